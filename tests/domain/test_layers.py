"""The layer rules of docs/explanation/architecture.md, checked on every module's imports (ast).

Each package may import only what its row of the layer table allows; an import inside a
function counts as much as one at the top (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("ledger", "api", "projections", "cli", "devtools")

# Libraries that do I/O (database, network, files, servers): never in the domain.
IO_LIBRARIES = (
    "psycopg",
    "psycopg_pool",
    "httpx",
    "fastapi",
    "starlette",
    "uvicorn",
    "pgserver",
    "prometheus_client",
    "eventsourcing.postgres",
    "eventsourcing.persistence",
    "eventsourcing.application",
    "socket",
    "urllib.request",
    "subprocess",
    "sqlite3",
    "pydantic_settings",
)

# package -> prefixes of modules it must not import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "ledger.domain": (
        "ledger.adapters",
        "ledger.services",
        "ledger.config",
        "ledger.thread_names",
        "projections",
        "api",
        "cli",
        "devtools",
        *IO_LIBRARIES,
    ),
    "ledger.adapters": ("ledger.services", "projections", "api", "cli", "devtools"),
    "ledger.services": ("api", "cli", "devtools"),
    "ledger.config": ("ledger.adapters", "ledger.services", "projections", "api", "cli"),
    "projections": ("ledger.services", "api", "cli", "devtools"),
    "api": ("cli", "devtools"),
    "cli": (),
    "ledger": ("projections", "api", "cli", "devtools"),
    "devtools": ("api", "cli"),
    # What tests and benches share to drive the service (not shipped: pyproject lists
    # only `devtools`): it starts the app, so it may import api, but never the CLI.
    "devtools.harness": ("cli",),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(module: str, source: str) -> list[tuple[int, str]]:
    """Every module `source` imports, absolute, with the line it is imported on."""
    tree = ast.parse(source, module)
    found: list[tuple[int, str]] = []
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            # `from ledger import orders` imports the module ledger.orders
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def layer_of(module: str) -> str | None:
    best = None
    for layer in FORBIDDEN:
        if (module == layer or module.startswith(layer + ".")) and (
            best is None or len(layer) > len(best)
        ):
            best = layer
    return best


def violations_in(module: str, source: str) -> list[str]:
    layer = layer_of(module)
    assert layer is not None, f"{module} belongs to no layer of the table"
    return [
        f"{module}:{line} imports {imported}"
        for line, imported in imports(module, source)
        for banned in FORBIDDEN[layer]
        if imported == banned or imported.startswith(banned + ".")
    ]


def test_every_module_respects_its_layers_imports() -> None:
    found = [
        v
        for top in PRODUCTION
        for path in sorted((ROOT / top).rglob("*.py"))
        for v in violations_in(module_name(path), path.read_text())
    ]
    assert found == []


def test_the_checker_sees_forbidden_imports() -> None:
    """The rules are not vacuous: each kind of breach is reported."""
    probe = "import json\nfrom psycopg import sql\nfrom ledger.adapters import pool\n"
    found = violations_in("ledger.domain.probe", probe)
    assert "ledger.domain.probe:2 imports psycopg" in found
    assert "ledger.domain.probe:3 imports ledger.adapters" in found
    assert not any(":1 " in v for v in found)
    lazy = "def f():\n    from api.errors import Conflict\n"
    assert violations_in("ledger.services.probe", lazy)
    assert violations_in("projections.probe", "from ledger.services import bootstrap\n")
    assert violations_in("api.probe", "import cli.main\n")
    assert violations_in("ledger.adapters.probe", "from ..services import bootstrap\n")
    assert violations_in("ledger.domain.probe", "import eventsourcing.postgres\n")
    assert not violations_in("ledger.domain.probe", "from eventsourcing.domain import X\n")


def test_every_production_package_has_a_row() -> None:
    for top in PRODUCTION:
        for path in (ROOT / top).rglob("*.py"):
            assert layer_of(module_name(path)) is not None, path


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
