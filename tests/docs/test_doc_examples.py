"""Every shell example of the tutorial, the troubleshooting guide and the API reference,
run against a live `pickpack serve` (and the fake Order Service where the document uses
it), in document order, one service and one fresh database per document. The convention
the documents follow is in tests/helpers/doc_examples.py and CONTRIBUTING.md ("Writing
docs")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.harness.pg import DatabaseFactory
from tests.helpers.doc_examples import (
    Block,
    Session,
    blocks,
    check_document,
    examples,
    json_matches,
    json_values,
    live_services,
    output_matches,
    text_matches,
)

ROOT = Path(__file__).resolve().parents[2]
RUN_DOCUMENTS = [
    ROOT / "docs" / "tutorial.md",
    ROOT / "docs" / "how-to" / "troubleshoot.md",
    ROOT / "docs" / "reference" / "api.md",
    ROOT / "docs" / "reference" / "errors.md",
    ROOT / "docs" / "how-to" / "cutover.md",  # its rehearsal section; the steps name Emporix
]


@pytest.fixture
def empty_db(databases: DatabaseFactory) -> Iterator[str]:
    """A database with no tables: `pickpack serve` migrates it, as on a reader's first
    start."""
    url = databases.empty()
    yield url
    databases.drop(url)


@pytest.mark.parametrize("doc", RUN_DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_document_runs_as_written(doc: Path, empty_db: str, tmp_path: Path) -> None:
    assert any(e.run for e in examples(doc.read_text())), "a document here has examples to run"
    work = tmp_path / "work"
    work.mkdir()
    with live_services(doc, empty_db, tmp_path / "data", tmp_path) as (urls, env):
        check_document(doc, Session(work, env, urls))


def test_the_tutorial_reaches_a_delivered_recalculation() -> None:
    """The tutorial's promise, checked on its text: it finishes an order and shows a
    recalculation job that succeeded, and it starts the service and the fake itself."""
    text = (ROOT / "docs" / "tutorial.md").read_text()
    run = [e for e in examples(text) if e.run]
    shown = "\n".join(e.block.text for e in examples(text))
    assert "pickpack serve" in shown and "pickpack fake-order-service" in shown
    assert any("/finish" in e.block.text for e in run)
    assert any(
        "jobs/recalculations/$JOB" in e.block.text
        and e.expected is not None
        and '"jobStatus": "SUCCESS"' in e.expected.text
        for e in run
    )


# The harness's own rules, without a service.


def test_blocks_pair_a_command_with_the_output_right_after_it() -> None:
    doc = (
        "```sh\necho hi\n```\n\n```text\nhi\n```\n"
        "```sh no-run\npickpack serve\n```\n"
        "```sh eventually\ncurl x\n```\nprose between\n```json\n{}\n```\n"
    )
    found = examples(doc)
    assert [(e.block.text, e.run, e.eventually) for e in found] == [
        ("echo hi\n", True, False),
        ("pickpack serve\n", False, False),
        ("curl x\n", True, True),
    ]
    assert found[0].expected is not None and found[0].expected.text == "hi\n"
    assert found[2].expected is None, "prose between: not its output"
    assert len(blocks(doc)) == 5


def test_json_ellipsis_matches_any_value_and_open_objects() -> None:
    assert json_matches({"a": "...", "b": [1, "..."]}, {"b": [1, {"x": 2}], "a": None})
    assert not json_matches({"a": 1}, {"a": 1, "b": 2}), "extra keys need the '...' key"
    assert json_matches({"a": 1, "...": "..."}, {"a": 1, "b": 2})
    assert not json_matches([1, "..."], [1, 2, 3]), "arrays match item by item"
    assert not json_matches({"a": True}, {"a": 1})
    assert json_values('{"a": 1}\n{"b": 2}') == [{"a": 1}, {"b": 2}]


def test_text_ellipsis_matches_any_run_of_lines() -> None:
    assert text_matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert text_matches(["a", "...", "b"], ["a", "b"])
    assert not text_matches(["a", "...", "d"], ["a", "b"])
    assert not text_matches(["a"], ["a", "b"])


def test_urls_are_replaced_in_the_expected_output() -> None:
    expected = Block("text", frozenset(), "see http://127.0.0.1:8000/docs\n", 1, 3)
    urls = {"http://127.0.0.1:8000": "http://127.0.0.1:5555"}
    assert output_matches(expected, "see http://127.0.0.1:5555/docs\n", urls)


def test_a_failure_shows_the_block_the_expected_and_the_actual_output(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("```sh\necho actual-words\n```\n\n```text\nexpected-words\n```\n")
    with pytest.raises(AssertionError) as caught:
        check_document(doc, Session(tmp_path, {"PATH": "/usr/bin:/bin"}, {}))
    message = str(caught.value)
    for part in ("line 1", "echo actual-words", "expected-words", "actual-words", "exit code 0"):
        assert part in message


def test_variables_carry_from_one_block_to_the_next(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "```sh\nJOB=$(echo j-1)\nexport TOKEN=t-2\n```\n"
        '```sh\necho "$JOB $TOKEN"\n```\n\n```text\nj-1 t-2\n```\n'
        "```sh\nfalse\n```\n"
    )
    with pytest.raises(AssertionError, match="exited with an error"):
        check_document(doc, Session(tmp_path, {"PATH": "/usr/bin:/bin"}, {}))
