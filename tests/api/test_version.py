"""The version is written once, in pyproject.toml, and everything that shows it agrees."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from api.version import service_version
from devtools.harness.service import Service

ROOT = Path(__file__).resolve().parents[2]


def pyproject_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def test_the_service_reports_pyprojects_version() -> None:
    # Fails in an editable install made before the last bump: `pip install -e .` again.
    assert service_version() == pyproject_version()


def test_health_and_openapi_carry_it(service: Service) -> None:
    assert service.client.get("/health").json()["version"] == pyproject_version()
    assert service.client.get("/openapi.json").json()["info"]["version"] == pyproject_version()


def test_the_docs_show_the_current_version() -> None:
    """Every `"version": "..."` example in the docs is the current one, so a release bump
    finds them all (this test fails until they are changed too). The docs live in
    subdirectories (reference/, explanation/, how-to/), so every page below docs/ counts;
    docs/archive/ is history and may quote the versions it ran."""
    docs = ROOT / "docs"
    pages = [
        ROOT / "README.md",
        *(p for p in sorted(docs.rglob("*.md")) if "archive" not in p.relative_to(docs).parts),
    ]
    assert docs / "reference" / "api.md" in pages, "the reference pages are searched"
    shown = {
        (str(page.relative_to(ROOT)), version)
        for page in pages
        for version in re.findall(r'"version":\s*"([^"]+)"', page.read_text())
    }
    assert shown, "no page shows the version: the /health examples are gone"
    assert {v for _, v in shown} == {pyproject_version()}, shown


def test_the_changelog_has_a_section_for_the_version_in_progress() -> None:
    """Keep a Changelog: while the version is a development or pre-release one, changes go
    under [Unreleased]; a release version has its own section at the top."""
    version = pyproject_version()
    headings = re.findall(r"^## \[([^\]]+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert headings, "CHANGELOG.md has no version sections"
    if re.fullmatch(r"\d+\.\d+\.\d+", version):
        assert version in headings[:2], f"CHANGELOG.md has no section for {version}"
    else:
        assert headings[0] == "Unreleased", headings
