"""The layer rules of docs/explanation/architecture.md, checked by import-linter.

The contracts are in pyproject.toml (`[tool.importlinter]`): a `layers` contract (cli,
api, bootstrap, projections beside ledger.services, ledger.adapters, ledger.domain) and
`forbidden` contracts (the domain does no I/O; production code never imports the test
harness; the fakes import none of the service's upper layers). An import inside a
function counts as much as one at the top. What import-linter cannot say (it sees an
external package whole, so not which of eventsourcing's modules the domain imports)
and the module size rule are checked here directly.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PRODUCTION = ("ledger", "api", "projections", "bootstrap", "cli", "devtools")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd: Path, *config: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *config],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )


def test_every_layer_contract_is_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_every_production_package_is_in_the_contracts() -> None:
    roots = set(PYPROJECT["tool"]["importlinter"]["root_packages"])
    shipped = {p.split(".")[0] for p in PYPROJECT["tool"]["setuptools"]["packages"]}
    assert shipped <= roots


def test_the_contracts_catch_each_kind_of_breach(tmp_path: Path) -> None:
    """The contracts are not vacuous: the same configuration over a small tree of the
    same packages, each breaking one rule, reports each breach."""
    probes = {
        "ledger/domain/probe.py": "import psycopg\n",  # I/O in the domain
        "ledger/adapters/probe.py": "def f():\n    from ledger.services import probe\n",
        "ledger/services/probe.py": "from projections import probe\n",  # a package cycle
        "projections/probe.py": "import bootstrap.probe\n",
        "bootstrap/probe.py": "x = 1\n",
        "api/probe.py": "import devtools.fake\n",
        "cli/probe.py": "from devtools.harness import probe\n",
        "devtools/fake.py": "import api.probe\n",
        "devtools/harness/probe.py": "x = 1\n",
        "migrations/probe.py": "x = 1\n",
    }
    for name, source in probes.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        for parent in path.relative_to(tmp_path).parents:
            if parent != Path("."):
                (tmp_path / parent / "__init__.py").touch()
    (tmp_path / "ledger" / "config.py").write_text("x = 1\n")
    (tmp_path / "ledger" / "thread_names.py").write_text("x = 1\n")
    (tmp_path / "psycopg.py").write_text("x = 1\n")
    config = (ROOT / "pyproject.toml").read_text()
    config = config.replace(
        '"devtools.fake_order_service", "devtools.fake_emporix", "devtools.http_fake", '
        '"devtools.state_dictionary"',
        '"devtools.fake"',
    )
    (tmp_path / "pyproject.toml").write_text(config)
    result = lint_imports(tmp_path)
    report = result.stdout
    assert result.returncode != 0, report
    for breach in (
        "ledger.domain.probe -> psycopg",
        "ledger.adapters.probe -> ledger.services.probe",
        "ledger.services.probe -> projections.probe",
        "projections.probe -> bootstrap.probe",
        "api.probe -> devtools.fake",
        "cli.probe -> devtools.harness.probe",
        "devtools.fake -> api.probe",
    ):
        assert breach in report, breach + "\n" + report


# eventsourcing's modules the domain may import: the event base class and the topic
# registry are data, no I/O; persistence, application and postgres are not.
DOMAIN_EVENTSOURCING = ("eventsourcing.domain", "eventsourcing.utils")


def eventsourcing_imports(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and not node.level
            else []
        )
        found += [n for n in names if n == "eventsourcing" or n.startswith("eventsourcing.")]
    return found


def test_the_domain_imports_only_eventsourcings_data_modules() -> None:
    found = {
        str(path.relative_to(ROOT)): module
        for path in sorted((ROOT / "ledger" / "domain").rglob("*.py"))
        for module in eventsourcing_imports(path.read_text())
        if module not in DOMAIN_EVENTSOURCING
    }
    assert not found, found
    probe = textwrap.dedent(
        """
        from eventsourcing.domain import DomainEvent
        def f():
            import eventsourcing.postgres
        """
    )
    assert eventsourcing_imports(probe) == ["eventsourcing.domain", "eventsourcing.postgres"]


MAX_MODULE_LINES = 400


def test_no_production_module_is_over_400_lines() -> None:
    """One concept per module: a module past 400 lines holds more than one (the old
    ledger/store.py held seven at 700)."""
    long = {
        str(path.relative_to(ROOT)): n
        for package in PRODUCTION
        for path in sorted((ROOT / package).rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, long
