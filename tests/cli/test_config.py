"""Configuration: DESIGN.md's names, validated at start-up, shown by `pickpack config` masked."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from devtools.harness.service import EXAMPLE_EVENT, SECRET, free_port, token
from ledger.config import DESIGN_NAMES, EXTRA_NAMES, ConfigError, Settings

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`pickpack ...` in a child process with exactly the PICKPACK_* variables given."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PICKPACK_")}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_every_variable_is_a_design_name_or_a_documented_extra() -> None:
    names = set(Settings.env_names().values())
    assert names == set(DESIGN_NAMES) | set(EXTRA_NAMES)
    text = (ROOT / "docs" / "reference" / "configuration.md").read_text()
    table = text.split("## Variables", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(PICKPACK_[A-Z_]+)` \|", table, flags=re.M))
    assert documented == names, "docs/reference/configuration.md's table lists every variable"


def test_settings_read_only_the_mapping_given_and_otherwise_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PICKPACK_RECALC_MAX_ATTEMPTS", "7")
    assert Settings.from_env({}).recalc_max_attempts == 10
    assert Settings.from_env().recalc_max_attempts == 7
    assert Settings.from_env({"PICKPACK_RECALC_MAX_ATTEMPTS": "3"}).recalc_max_attempts == 3


def test_empty_values_count_as_unset_and_urls_lose_a_trailing_slash() -> None:
    s = Settings.from_env(
        {
            "PICKPACK_JWT_SECRET": "",
            "PICKPACK_DATA_DIR": "",
            "PICKPACK_ORDER_SERVICE_URL": "http://orders.internal:8090/order-v2/",
        }
    )
    assert s.jwt_secret is None
    assert s.data_dir == Path("./.pickpack").resolve()
    assert s.order_service_url == "http://orders.internal:8090/order-v2"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("PICKPACK_RECALC_MAX_ATTEMPTS", "abc", "valid integer"),
        ("PICKPACK_RECALC_MAX_ATTEMPTS", "0", "greater than or equal to 1"),
        ("PICKPACK_ORDER_SERVICE_TIMEOUT_SECONDS", "soon", "valid number"),
        ("PICKPACK_RECALC_POLL_SECONDS", "-1", "greater than 0"),
        ("PICKPACK_DATABASE_URL", "mysql://u@db/pp", "postgresql://"),
        ("PICKPACK_DATABASE_URL", "postgresql://u@db:port/pp", "port"),
        ("PICKPACK_DATABASE_URL", "just some words", "not a PostgreSQL connection URL"),
        ("PICKPACK_ORDER_SERVICE_URL", "orders.internal:8090", "http:// or https://"),
        ("PICKPACK_JWKS_URL", "file:///etc/keys.json", "http:// or https://"),
    ],
)
def test_a_wrong_value_is_refused_naming_the_variable(name: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({name: value})
    message = str(refused.value)
    assert name in message and says in message
    assert "\n" not in message


def test_a_refused_database_url_does_not_show_its_password() -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"PICKPACK_DATABASE_URL": "postgresql://pp:hunter2@db:nope/pp"})
    assert "hunter2" not in str(refused.value)
    assert "PICKPACK_DATABASE_URL" in str(refused.value)


def test_a_replica_url_is_checked_like_the_database_url_and_needs_one() -> None:
    """docs/reference/configuration.md: same form and checks; needs PICKPACK_DATABASE_URL
    (the embedded database has no replica). A password is never shown."""
    primary = "postgresql://pp:hunter2@pg1:5432/pp"
    replicas = "postgresql://pp:hunter2@pg2:5432,pg3:5432/pp?target_session_attrs=prefer-standby"
    both = {"PICKPACK_DATABASE_URL": primary, "PICKPACK_DATABASE_REPLICA_URL": replicas}
    settings = Settings.from_env(both)
    assert settings.database_replica_url == replicas
    assert settings.database_replica_max_lag_seconds == 5.0
    assert "hunter2" not in str(settings.effective())
    for env, says in (
        ({"PICKPACK_DATABASE_REPLICA_URL": replicas}, "PICKPACK_DATABASE_URL is not"),
        ({**both, "PICKPACK_DATABASE_REPLICA_URL": "mysql://pp@pg2/pp"}, "postgresql://"),
        ({**both, "PICKPACK_DATABASE_REPLICA_MAX_LAG_SECONDS": "0"}, "greater than 0"),
    ):
        with pytest.raises(ConfigError) as refused:
            Settings.from_env(env)
        message = str(refused.value)
        assert "PICKPACK_DATABASE_REPLICA" in message and says in message, message
        assert "hunter2" not in message


def test_the_urls_the_service_and_its_tests_use_are_accepted() -> None:
    for url in (
        "postgresql://x@db.example/pp",
        "postgres://u:p@db:5432/pp?sslmode=require",
        "host=127.0.0.1 port=5432 user=postgres dbname=pp",  # libpq key=value, as tests use
        "postgresql://postgres:@/postgres?host=/tmp/pgsocket",  # the embedded server's
    ):
        assert Settings.from_env({"PICKPACK_DATABASE_URL": url}).database_url == url


def test_pickpack_config_prints_the_effective_configuration_with_secrets_masked(
    tmp_path: Path,
) -> None:
    env = {
        "PICKPACK_DATABASE_URL": "postgresql://pickpack:s3cret-pw@db:5432/pickpack",
        "PICKPACK_DATA_DIR": str(tmp_path),
        "PICKPACK_JWT_SECRET": "jwt-secret-value",
        "PICKPACK_ORDER_SERVICE_TOKEN": "order-token-value",
        "PICKPACK_RECALC_MAX_ATTEMPTS": "4",
    }
    shown = cli("config", env=env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "PICKPACK_DATABASE_URL=postgresql://pickpack:****@db:5432/pickpack" in lines
    assert "PICKPACK_JWT_SECRET=****" in lines
    assert "PICKPACK_ORDER_SERVICE_TOKEN=****" in lines
    assert f"PICKPACK_DATA_DIR={tmp_path}" in lines
    assert "PICKPACK_RECALC_MAX_ATTEMPTS=4" in lines
    assert any(line.startswith("# PICKPACK_ORDER_SERVICE_URL is unset") for line in lines)
    for secret in ("s3cret-pw", "jwt-secret-value", "order-token-value"):
        assert secret not in shown.stdout + shown.stderr
    as_json = orjson.loads(cli("config", "--json", env=env).stdout)
    assert as_json["PICKPACK_JWT_SECRET"] == "****"
    assert as_json["PICKPACK_JWKS_URL"] is None
    assert set(as_json) == set(DESIGN_NAMES) | set(EXTRA_NAMES)


def test_values_are_shown_as_the_environment_and_the_reference_write_them() -> None:
    """`pickpack config` shows each value as an operator writes it in the environment:
    the reference's defaults as its table writes them (`true`, `30`, `0.5`, not `True`,
    `30.0`), and every value shown, set again, gives the same settings."""
    text = (ROOT / "docs" / "reference" / "configuration.md").read_text()
    table = text.split("## Variables", 1)[1].split("\n## ", 1)[0]
    defaults = dict(re.findall(r"^\| `(PICKPACK_[A-Z_]+)` \| `([^`]+)`", table, flags=re.M))
    del defaults["PICKPACK_DATA_DIR"]  # shown made absolute: the directory it resolves to
    shown = Settings.from_env({}).effective()
    assert {name: shown[name] for name in defaults} == defaults
    env = {
        "PICKPACK_COMPRESS_EVENTS": "false",
        "PICKPACK_RECALC_POLL_SECONDS": "0.25",
        "PICKPACK_DRAIN_SECONDS": "12",
        "PICKPACK_DATABASE_TIMEOUT_SECONDS": "2.5",
    }
    settings = Settings.from_env(env)
    shown = settings.effective()
    assert {name: shown[name] for name in env} == env
    again = {name: value for name, value in shown.items() if value is not None}
    assert Settings.from_env(again) == settings


def test_the_references_pickpack_config_example_is_what_the_command_prints() -> None:
    """docs/reference/configuration.md shows a run of `pickpack config`: the command
    given there, run with exactly the variables it sets, prints exactly the lines shown,
    every variable in the same order (a new variable must appear in the example too)."""
    text = (ROOT / "docs" / "reference" / "configuration.md").read_text()
    section = text.split("## What the service runs with: pickpack config", 1)[1]
    section = section.split("\n## ", 1)[0]
    command, shown = re.findall(r"^```[^\n]*\n(.*?)^```$", section, flags=re.M | re.S)[:2]
    words = shlex.split(command.replace("\\\n", " "))
    env = dict(w.split("=", 1) for w in words if re.fullmatch(r"[A-Z_]+=.*", w))
    assert words[len(env) :] == ["pickpack", "config"], command
    printed = cli("config", env=env)
    assert printed.returncode == 0, printed.stderr
    documented, actual = shown.splitlines(), printed.stdout.splitlines()

    def names(lines: list[str]) -> list[str]:
        return [re.search(r"PICKPACK_[A-Z_]+", line).group() for line in lines]  # type: ignore[union-attr]

    assert names(documented) == names(actual), "the example lists every variable, in order"
    assert documented == actual
    assert names(actual) == list(Settings.env_names().values())


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PICKPACK_RECALC_MAX_ATTEMPTS", "abc"),
        ("PICKPACK_DATABASE_URL", "postgresql://pp:hunter2@db:notaport/pp"),
    ],
)
def test_serve_with_a_wrong_value_stops_with_one_line_naming_the_variable(
    tmp_path: Path, name: str, value: str
) -> None:
    result = cli(
        "serve", "--port", str(free_port()), env={"PICKPACK_DATA_DIR": str(tmp_path), name: value}
    )
    assert result.returncode != 0
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("pickpack: invalid configuration: ") and name in line
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr
    assert not (tmp_path / "pg").exists(), "nothing may start before the configuration is valid"


def test_serve_logs_json_lines_one_per_request_without_tokens(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PICKPACK_")}
    env = {
        **clean,
        "PICKPACK_DATABASE_URL": db_url,
        "PICKPACK_DATA_DIR": str(tmp_path),
        "PICKPACK_JWT_SECRET": SECRET,
        "PICKPACK_DRAIN_SECONDS": "0",  # no balancer here: SIGTERM stops without a drain
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    bearer = token()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        headers = {"Authorization": f"Bearer {bearer}", "saas-token": "saas-secret-1"}
        posted = httpx.post(f"{url}/pick-pack/demo/events", json=EXAMPLE_EVENT, headers=headers)
        assert posted.status_code == 200
        assert "pickpack_http_requests_total" in httpx.get(f"{url}/metrics").text
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    requests = [orjson.loads(line) for line in out.splitlines()]  # every stdout line is JSON
    post = next(r for r in requests if r["method"] == "POST")
    assert (post["route"], post["tenant"], post["status"]) == (
        "/pick-pack/{tenant}/events",
        "demo",
        200,
    )
    assert post["request_id"] == posted.headers["x-request-id"]
    logged = [orjson.loads(line) for line in err.splitlines()]  # and every stderr line
    assert any("serving on" in r["msg"] for r in logged)
    assert not any("HTTP/1.1" in r["msg"] for r in logged), "uvicorn's access log is on"
    for secret in (bearer, "saas-secret-1", SECRET):
        assert secret not in out + err
