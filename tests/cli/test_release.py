"""The release as an operator gets it: a wheel and an sdist built with the standard build
tools, and the wheel, installed into a fresh virtualenv with no checkout anywhere on the
path, serves the board and /docs (so it carries the migrations, the board's files, the
docs pages' files and the state dictionary).

Cost: the wheel is built once, without an isolated build environment (pyproject's test
extras hold the build tools), and installed with `--no-index --find-links`: nothing is
downloaded. Its dependencies are the ones this test environment already has, put on the
fresh environment's path by a .pth file, and `pip check` verifies that they satisfy
what the wheel declares. (A full install with its dependencies from the index, the
operator's path, is the same wheel; docs/how-to/deploy.md gives the command.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.harness.faults import ROOT
from devtools.harness.service import SECRET, free_port
from ledger.version import service_version

SHIPPED = (
    "migrations/0001_event_store.sql",
    "api/board/index.html",
    "api/board/assets/board.js",
    "ledger/adapters/state-dictionary-v1.zdict",
)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    yield out


def test_the_build_makes_a_wheel_and_an_sdist_that_carry_everything(dist: Path) -> None:
    version = service_version()
    [wheel] = dist.glob(f"pickpack_ledger-{version}-py3-none-any.whl")
    [sdist] = dist.glob(f"pickpack_ledger-{version}.tar.gz")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(SHIPPED) <= names
    assert not [n for n in names if n.startswith(("tests/", "bench/", "devtools/harness/"))]
    with tarfile.open(sdist) as tar:
        in_sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert set(SHIPPED) <= in_sdist


def test_the_wheel_serves_the_board_and_docs_from_a_fresh_virtualenv(
    dist: Path, db_url: str, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    # Without its own pip (ensurepip alone takes longer than the rest): this
    # environment's pip installs into it (`pip --python`).
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PICKPACK_", "PYTHON"))}
    install = subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--find-links", str(dist),
         f"pickpack-ledger=={service_version()}"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            env=env, capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    checked = subprocess.run([*pip, "check"], env=env, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    run = tmp_path / "run"  # the working directory: no checkout in it or above it
    run.mkdir()
    where = subprocess.run(
        [str(python), "-c", "import api, cli, migrations, ledger; "
         "print('\\n'.join(m.__file__ for m in (api, cli, migrations, ledger)))"],
        cwd=run, env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert all(path.startswith(str(site)) for path in where), where

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve_env = {
        **env,
        "PICKPACK_DATABASE_URL": db_url,
        "PICKPACK_DATA_DIR": str(run / "data"),
        "PICKPACK_JWT_SECRET": SECRET,
        "PICKPACK_DRAIN_SECONDS": "0",
    }
    log = run / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(venv / "bin" / "pickpack"), "serve", "--port", str(port)],
            cwd=run, env=serve_env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert httpx.get(f"{url}/health").json()["version"] == service_version()
        board = httpx.get(f"{url}/board")
        assert board.status_code == 200 and "<html" in board.text.lower()
        assert httpx.get(f"{url}/board/assets/board.js").status_code == 200
        docs = httpx.get(f"{url}/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        assets = [p for p in docs.text.split('"') if p.startswith("/") and p.endswith(".js")]
        assert assets and all(httpx.get(f"{url}{a}").status_code == 200 for a in assets)
        assert httpx.get(f"{url}/openapi.json").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]
