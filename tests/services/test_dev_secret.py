"""The dev secret in the data dir (no PICKPACK_JWT_SECRET): replicas sharing a data dir
that start at the same moment must all sign and check with one secret, never an empty
one (README: "a secret generated once in .pickpack/jwt-secret (mode 0600)")."""

from __future__ import annotations

import multiprocessing
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from ledger.config import ConfigError
from ledger.services.signing import local_secret


def test_a_start_that_reads_while_another_is_writing_gets_the_one_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first starter is held right after it creates a file in the data dir, before
    it writes to it; a second starter runs meanwhile. Both must end with the same secret,
    the one in the file. (The second is given 5 s: a starter that waits for the first
    one instead, e.g. on a lock, passes too.)"""
    data_dir = tmp_path / "data"
    first = threading.current_thread()
    created = threading.Event()
    second_done = threading.Event()
    real_open = os.open
    held: list[Any] = []

    def open_and_hold(file: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        handle = real_open(file, flags, *args, **kwargs)
        creates_in_data_dir = flags & os.O_CREAT and Path(file).parent == data_dir
        if creates_in_data_dir and threading.current_thread() is first and not held:
            held.append(file)
            created.set()
            second_done.wait(5)
        return handle

    monkeypatch.setattr(os, "open", open_and_hold)
    seconds: list[str | Exception | None] = []

    def second_start() -> None:
        created.wait(5)
        try:
            seconds.append(local_secret(data_dir))
        except Exception as exc:  # reported by the assertion below
            seconds.append(exc)
        second_done.set()

    second = threading.Thread(target=second_start)
    second.start()
    mine = local_secret(data_dir)
    second.join(10)
    assert held, "the first start created no file in the data dir"
    assert seconds == [mine], f"second start got {seconds!r}, the first {mine!r}"
    assert mine and (data_dir / "jwt-secret").read_text().strip() == mine


def _start(data_dir: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        results.put(local_secret(Path(data_dir)))
    except Exception as exc:  # the parent compares what each got
        results.put(repr(exc))


def test_processes_starting_together_on_a_shared_data_dir_agree(tmp_path: Path) -> None:
    """Replicas as compose's `replicas` profile starts them: processes released by one
    barrier onto a fresh data dir, round after round."""
    context = multiprocessing.get_context("fork")
    processes, rounds = 6, 25
    disagreements = []
    for round_ in range(rounds):
        data_dir = tmp_path / f"round-{round_}"
        barrier = context.Barrier(processes)
        results = context.Queue()
        started = [
            context.Process(target=_start, args=(str(data_dir), barrier, results))
            for _ in range(processes)
        ]
        for process in started:
            process.start()
        try:
            got = [results.get(timeout=30) for _ in started]
        finally:
            for process in started:
                process.join(10)
                if process.is_alive():  # never left behind, whatever failed
                    process.kill()
        on_disk = (data_dir / "jwt-secret").read_text().strip()
        if set(got) != {on_disk} or not on_disk:
            disagreements.append((round_, sorted(set(got)), on_disk))
    assert not disagreements, f"{len(disagreements)} of {rounds} rounds: {disagreements[:3]}"


def test_only_the_secret_is_left_in_the_data_dir_with_mode_0600(tmp_path: Path) -> None:
    secret = local_secret(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["jwt-secret"]
    assert stat.S_IMODE(os.stat(tmp_path / "jwt-secret").st_mode) == 0o600
    assert local_secret(tmp_path) == secret


def test_an_empty_secret_file_is_refused_naming_it(tmp_path: Path) -> None:
    # An empty HS256 key would sign and check tokens anyone can make; an older release
    # left the file empty when stopped between creating and writing it.
    (tmp_path / "jwt-secret").write_text("\n")
    with pytest.raises(ConfigError, match=r"jwt-secret.*empty.*PICKPACK_JWT_SECRET"):
        local_secret(tmp_path)
    with pytest.raises(ConfigError):
        local_secret(tmp_path, create=False)


def test_without_create_a_missing_secret_is_none_and_nothing_is_written(tmp_path: Path) -> None:
    assert local_secret(tmp_path / "data", create=False) is None
    assert not (tmp_path / "data").exists()
