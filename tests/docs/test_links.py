"""Every relative link in README.md and docs/**/*.md resolves: the file (or directory)
exists in the repository, and a `#anchor` names a heading of the target as GitHub makes
its anchors. Nothing is exempt: a link to a page that another change is still writing
fails here until that page exists."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[2]

_FENCE = re.compile(r"^(```|~~~)")
_INLINE_CODE = re.compile(r"`+[^`]*`+")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, numbered from 1."""
    out: list[tuple[int, str]] = []
    fenced = False
    for n, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            out.append((n, line))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text lower-cased, every character that
    is not a letter, a digit, a space, a hyphen or an underscore removed, spaces made
    hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = text.replace("`", "")
    text = re.sub(r"(\*\*|__|\*)", "", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = text.strip().lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in ("L", "N"))
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: Counter[str] = Counter()
    for _, line in prose_lines(path.read_text()):
        found.update(_HTML_ANCHOR.findall(line))
        m = _HEADING.match(line)
        if m is None:
            continue
        base = slug(m.group(2))
        found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def links(path: Path) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for n, line in prose_lines(path.read_text()):
        line = _INLINE_CODE.sub("", line)
        out += [(n, m.group(1)) for m in _LINK.finditer(line)]
        if m := _REFERENCE.match(line):
            out.append((n, m.group(1)))
    return out


def broken(path: Path, root: Path = ROOT) -> list[str]:
    problems: list[str] = []
    for n, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I):
            continue  # http:, https:, mailto:: not a file of this repository
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / unquote(file_part)).resolve() if file_part else path
        where = f"{path.relative_to(root)}:{n}: {target}"
        if not dest.is_relative_to(root):
            problems.append(f"{where}: points outside the repository")
        elif not dest.exists():
            problems.append(f"{where}: {dest.relative_to(root)} does not exist")
        elif anchor and dest.suffix == ".md" and unquote(anchor) not in anchors(dest):
            problems.append(f"{where}: no heading of {dest.relative_to(root)} makes #{anchor}")
    return problems


def test_every_relative_link_in_the_docs_resolves() -> None:
    problems = [p for doc in documents() for p in broken(doc)]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_slugs_follow_githubs_rules() -> None:
    assert slug("Five-minute quick start") == "five-minute-quick-start"
    assert slug("Watch the floor: the packing board") == "watch-the-floor-the-packing-board"
    assert slug("GET /pick-pack/{tenant}/changes") == "get-pick-packtenantchanges"
    assert slug("`pickpack events export`") == "pickpack-events-export"
    assert slug("What a field may hold (identifiers, free text, amounts, body size)") == (
        "what-a-field-may-hold-identifiers-free-text-amounts-body-size"
    )
    assert slug("Rebuild **now**, or [later](x.md)") == "rebuild-now-or-later"


def test_the_checker_finds_missing_files_anchors_and_escapes(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# Title\n\n## Quick start\n\n## Quick start\n")
    doc = tmp_path / "docs" / "page.md"
    doc.write_text(
        "## Here\n[a](nowhere.md) [b](../README.md#no-such-heading)\n"
        "[c](../README.md#quick-start-1)\n"
        "[d](#here) [e](../../outside.md) `[f](in-code.md)` [g](https://example.com/x.md)\n"
        "```\n[h](in-a-fence.md)\n```\n[i]: missing-reference.md\n"
    )
    assert [p.split(": ", 2)[1] for p in broken(doc, tmp_path)] == [
        "nowhere.md",
        "../README.md#no-such-heading",
        "../../outside.md",
        "missing-reference.md",
    ]
