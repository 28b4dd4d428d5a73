"""compose.yaml, the Dockerfile and its entrypoint, checked as far as a machine without a
Docker engine can: they parse, name files that exist, use DESIGN.md's configuration
names, and the entrypoint and healthcheck do what they say when run here. Where an engine
runs, docker/smoke.sh runs the stack itself (not part of this suite)."""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from devtools.harness.service import Service, free_port
from devtools.patroni import PATRONI_VERSION
from ledger.config import DESIGN_NAMES, Settings

ROOT = Path(__file__).resolve().parents[2]
# The design document beside the checkout when there is one, else the copy kept with
# the spec copies (a fresh clone in CI has no ../shared).
# The product design's original: where the environment names it (DESIGN_ORIGINAL), else
# where the team keeps it beside the repository (CI lays it there); the repository keeps
# a copy in tests/spec/.
SHARED_DESIGN = Path(os.environ.get("DESIGN_ORIGINAL") or ROOT.parent / "shared" / "DESIGN.md")
DESIGN_COPY = ROOT / "tests" / "spec" / "DESIGN.md"
DESIGN = SHARED_DESIGN if SHARED_DESIGN.exists() else DESIGN_COPY
COMPOSE_VARIABLES = {
    "POSTGRES_PASSWORD",  # compose's own, for the postgres service
    "FORWARDED_ALLOW_IPS",  # uvicorn's: the proxies whose forwarded headers it believes
    # Patroni's, for the `cluster` profile's nodes: the superuser's and replication's
    "PATRONI_SUPERUSER_PASSWORD",
    "PATRONI_REPLICATION_PASSWORD",
}


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text()))


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for ins in instructions:
        if ins[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(ins)
    return found


def ignored(path: str, patterns: list[str]) -> bool:
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        fnmatch.fnmatch(prefix, pat) or fnmatch.fnmatch(prefix, pat.removeprefix("**/"))
        for pat in patterns
        for prefix in prefixes
    )


def test_compose_runs_postgres_from_the_official_image_with_a_healthcheck_and_named_volume() -> (
    None
):
    doc = compose()
    pg = doc["services"]["postgres"]
    assert re.fullmatch(r"postgres:\d+(\.\d+)?(-[a-z0-9]+)?", pg["image"]), pg["image"]
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    named = [v.split(":")[0] for v in pg["volumes"]]
    assert "pgdata" in named and "pgdata" in doc["volumes"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in pg["volumes"])


def test_compose_builds_pickpack_from_the_repository_and_waits_for_a_healthy_database() -> None:
    app = compose()["services"]["pickpack"]
    context = ROOT / app["build"]["context"]
    assert context.is_dir()
    assert (context / app["build"].get("dockerfile", "Dockerfile")).is_file()
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "/ready" in " ".join(app["healthcheck"]["test"])
    assert "profiles" not in app
    for volume in app.get("volumes", []):
        source = volume.split(":")[0]
        assert source in compose()["volumes"] or (ROOT / source).exists(), volume


def test_compose_publishes_ports_on_the_hosts_loopback_only() -> None:
    # "8000:8000" would listen on every interface of the host, with a dev secret when
    # PICKPACK_JWT_SECRET is unset; another host's access is a deliberate change.
    published = {name: service.get("ports", []) for name, service in compose()["services"].items()}
    assert published["pickpack"] and published["order-service"]
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port}"
    assert not published.get("postgres"), "the database is reached on the compose network"


def test_the_dockerfile_needs_no_registry_but_for_its_base_image() -> None:
    # A `# syntax=` parser directive makes BuildKit pull a frontend image first: a build
    # that cannot reach Docker Hub fails before its first step, and the built-in frontend
    # reads everything this Dockerfile uses.
    first_lines = (ROOT / "Dockerfile").read_text().splitlines()[:5]
    assert not [line for line in first_lines if re.match(r"#\s*syntax\s*=", line, re.I)]
    instructions = dockerfile_instructions(ROOT / "Dockerfile")
    stage_names = set()
    for word, args in instructions:
        if word == "FROM":
            image, *rest = args.split()
            assert image in stage_names or image == "python:${PYTHON_VERSION}-slim", image
            if rest and rest[0].upper() == "AS":
                stage_names.add(rest[1])


def test_the_fake_order_service_runs_only_under_the_demo_profile() -> None:
    services = compose()["services"]
    demo = [name for name, s in services.items() if "demo" in s.get("profiles", [])]
    assert demo == ["order-service"]
    fake = services["order-service"]
    assert fake["command"][:2] == ["pickpack", "fake-order-service"]
    assert (ROOT / fake["build"]["context"] / "Dockerfile").is_file()


def test_compose_sets_only_design_names_and_documented_extras() -> None:
    known = set(Settings.env_names().values())
    services = compose()["services"]
    app_env = services["pickpack"]["environment"]
    assert set(DESIGN_NAMES) <= set(app_env), "every DESIGN.md variable can be set"
    for name, service in services.items():
        for var in service.get("environment", {}):
            if var.startswith("PICKPACK_"):
                assert var in known, f"{name} sets {var}, which the service does not read"
    # Every ${VARIABLE} the file reads from the operator's environment is one of ours.
    text = (ROOT / "compose.yaml").read_text()
    for var in re.findall(r"\$\{([A-Z_]+)", text):
        assert var in known or var in COMPOSE_VARIABLES, var


# Set by compose.yaml itself rather than taken from the operator's environment (its
# header comment says so): the database is the postgres service, the data the volume.
SET_BY_COMPOSE = {"PICKPACK_DATABASE_URL", "PICKPACK_DATA_DIR"}


def test_compose_passes_every_variable_the_service_reads_from_the_environment() -> None:
    """compose.yaml says every setting can come from the environment or an .env file: so
    each variable ledger/config.py reads is passed through as ${NAME:-...} or ${NAME-...},
    or set by the file itself and named in its header comment."""
    app_env = compose()["services"]["pickpack"]["environment"]
    header = "\n".join(
        line for line in (ROOT / "compose.yaml").read_text().splitlines() if line.startswith("#")
    )
    for var in Settings.env_names().values():
        assert var in app_env, f"compose.yaml does not pass {var}"
        value = str(app_env[var])
        if var in SET_BY_COMPOSE:
            assert var in header, f"compose.yaml sets {var} without saying so"
        else:
            assert re.fullmatch(r"\$\{" + var + r":?-[^}]*\}", value), f"{var}: {value}"


def test_the_design_names_are_exactly_design_mds_configuration_table() -> None:
    text = DESIGN.read_text()
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    in_design = set(re.findall(r"PICKPACK_[A-Z_]+", table))
    assert in_design == set(DESIGN_NAMES)


def test_the_kept_copy_of_design_md_is_the_current_one() -> None:
    if "DESIGN_ORIGINAL" in os.environ:
        assert SHARED_DESIGN.exists(), f"DESIGN_ORIGINAL names no file: {SHARED_DESIGN}"
    elif not SHARED_DESIGN.exists():
        pytest.skip("no original of the product design to compare tests/spec/DESIGN.md with")
    assert DESIGN_COPY.read_text() == SHARED_DESIGN.read_text()


def test_the_dockerfile_is_multi_stage_and_runs_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions(ROOT / "Dockerfile")
    built = stages(instructions)
    assert len(built) >= 2, "a builder stage and a runtime stage"
    final = built[-1]
    assert "slim" in final[0][1]
    users = [args for word, args in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(w == "COPY" and "--from=builder" in a for w, a in final), "venv from builder"
    [health] = [args for word, args in final if word == "HEALTHCHECK"]
    assert "/ready" in health and "curl" not in health


def test_every_file_the_dockerfile_copies_exists_and_is_not_dockerignored() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for heavy in (".git", ".venv", ".pickpack"):
        assert ignored(heavy, patterns), f"{heavy} would be sent to the Docker daemon"
    copied = set()
    for word, args in dockerfile_instructions(ROOT / "Dockerfile"):
        if word != "COPY" or "--from=" in args:
            continue
        *sources, _ = [a for a in shlex.split(args) if not a.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert not ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"
            copied.add(source)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]
    # A folder copied brings its subpackages (ledger.domain comes with ledger).
    folders = {p.split(".")[0] for p in packages}
    assert folders <= copied, "every package the wheel needs is copied"
    assert project["project"]["readme"] in copied


def fake_pickpack(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A `pickpack` on PATH that records how it was called."""
    calls = tmp_path / "calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pickpack"
    script.write_text(f'#!/bin/sh\necho "pickpack $*" >> {calls}\n')
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, calls


def test_the_entrypoint_migrates_then_serves_on_all_interfaces(tmp_path: Path) -> None:
    env, calls = fake_pickpack(tmp_path)
    entrypoint = ROOT / "docker" / "entrypoint.sh"
    assert os.access(entrypoint, os.X_OK)
    subprocess.run([str(entrypoint)], env=env, check=True)
    assert calls.read_text().splitlines() == [
        "pickpack migrate",
        "pickpack serve --host 0.0.0.0 --port 8000",
    ]
    calls.unlink()
    subprocess.run([str(entrypoint), "--workers", "2"], env=env, check=True)
    assert calls.read_text().splitlines()[-1] == (
        "pickpack serve --host 0.0.0.0 --port 8000 --workers 2"
    )
    calls.unlink()
    subprocess.run([str(entrypoint), "pickpack", "config"], env=env, check=True)
    assert calls.read_text().splitlines() == ["pickpack config"], "a command runs as given"


def healthcheck_command() -> list[str]:
    [args] = [a for w, a in dockerfile_instructions(ROOT / "Dockerfile") if w == "HEALTHCHECK"]
    exec_form = args.split("CMD", 1)[1].strip()
    return list(yaml.safe_load(exec_form))  # a JSON array, which YAML reads too


def test_the_image_healthcheck_passes_on_a_ready_service_and_fails_without_one(
    service: Service,
) -> None:
    command = healthcheck_command()
    assert command[0] == "python"
    port = service.url.rsplit(":", 1)[1]
    here = [
        sys.executable,
        *[c.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for c in command[1:]],
    ]
    assert subprocess.run(here, capture_output=True, timeout=30).returncode == 0
    closed = [c.replace(f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}") for c in here]
    assert subprocess.run(closed, capture_output=True, timeout=30).returncode != 0


# -- what a machine without a registry needs, and the two profiles beyond the default --

HA = ROOT / "docker" / "ha"
CLUSTER = {"etcd", "pg1", "pg2", "pg3", "pg-proxy", "pickpack-ha"}


def local_image_tags() -> set[str]:
    """The tags docker/local-images.sh builds (its release: bookworm, which the cluster's
    Dockerfile pins for its PostgreSQL 15)."""
    text = (ROOT / "docker" / "local-images.sh").read_text()
    return {tag.replace("$SUITE", "bookworm") for tag in re.findall(r"^\w+_TAG=(\S+)$", text, re.M)}


def base_images(dockerfile: Path) -> set[str]:
    found, stage_names = set(), set()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile.read_text(), re.M))
    for word, rest in dockerfile_instructions(dockerfile):
        if word == "FROM":
            image, *more = rest.split()
            for name, value in args.items():
                image = image.replace("${" + name + "}", value)
            if image not in stage_names:
                found.add(image)
            if more and more[0].upper() == "AS":
                stage_names.add(more[1])
    return found


def test_every_image_pulled_or_built_from_is_one_local_images_makes() -> None:
    # On a machine without a registry, compose can run only what exists locally: the
    # images services run without building them, and every Dockerfile's base.
    services = compose()["services"]
    needed = {s["image"] for s in services.values() if "build" not in s}
    for service in services.values():
        if "build" in service:
            context = ROOT / service["build"]["context"]
            needed |= base_images(context / service["build"].get("dockerfile", "Dockerfile"))
    assert "haproxy:2.6" in needed and "debian:bookworm-slim" in needed
    assert needed <= local_image_tags(), needed - local_image_tags()


def test_the_docker_scripts_parse() -> None:
    scripts = sorted((ROOT / "docker").rglob("*.sh"))
    assert {"smoke-replicas.sh", "smoke-cluster.sh", "local-haproxy-entrypoint.sh"} <= {
        s.name for s in scripts
    }
    for script in scripts:
        checked = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
        assert checked.returncode == 0, f"{script.name}: {checked.stderr}"
        if script.name != "smoke-lib.sh":  # sourced, not run
            assert os.access(script, os.X_OK), f"{script.name} is not executable"


def test_the_replicas_haproxy_is_published_on_loopback_beside_its_status_page() -> None:
    services = compose()["services"]
    balancer = services["haproxy"]
    assert balancer["image"] == "haproxy:2.6"
    published = {p.rsplit(":", 1)[1]: p for p in balancer["ports"]}
    assert balancer["environment"]["LB_BIND"].endswith(":" + published["8000"].split(":")[2])
    assert balancer["environment"]["LB_STATS_BIND"].endswith(":8404") and "8404" in published
    # The second replica publishes nothing: it is reached through the balancer.
    assert services["pickpack-b"]["ports"] == []


def client_seen(trusted: str, peer: str, forwarded_for: str | None) -> str:
    """The client address a replica's request handlers (the token endpoint's throttle)
    see for a request from `peer`, with uvicorn's handling of FORWARDED_ALLOW_IPS."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    seen = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["client"][0])

    headers = [(b"x-forwarded-for", forwarded_for.encode())] if forwarded_for else []
    scope = {"type": "http", "client": (peer, 40000), "headers": headers}
    asyncio.run(ProxyHeadersMiddleware(app, trusted)(scope, None, None))  # type: ignore[arg-type]
    return seen[0]


def test_the_replicas_believe_x_forwarded_for_from_their_haproxy_and_no_one_else() -> None:
    """Behind HAProxy every scanner's connection comes from HAProxy: unless the replicas
    believe the X-Forwarded-For it adds (`option forwardfor`), the token endpoint's
    throttle counts all scanners as one. They must believe it from HAProxy's address
    only: another container on the network must not be able to claim any address."""
    services = compose()["services"]
    frontend = (ROOT / "docker" / "haproxy.cfg").read_text().split("frontend pickpack", 1)[1]
    assert re.search(r"^\s*option forwardfor\s*$", frontend.split("\nbackend", 1)[0], re.M)
    networks = services["haproxy"].get("networks") or {}
    assert len(networks) == 1, "HAProxy has no fixed address for the replicas to trust"
    [(network, attached)] = networks.items()
    proxy = ipaddress.ip_address(attached["ipv4_address"])
    [ipam] = compose()["networks"][network]["ipam"]["config"]
    subnet = ipaddress.ip_network(ipam["subnet"])
    assert proxy in subnet and proxy != ipaddress.ip_address(ipam["gateway"])
    env = services["haproxy"]["environment"]
    replicas = [env["REPLICA_A"].split(":")[0], env["REPLICA_B"].split(":")[0]]
    assert replicas == ["pickpack", "pickpack-b"]
    for name in replicas:
        assert network in services[name]["networks"], f"{name} is not on {network}"
        value = services[name]["environment"]["FORWARDED_ALLOW_IPS"]
        [trusted] = re.fullmatch(r"\$\{FORWARDED_ALLOW_IPS:-([^}]*)\}", value).groups()  # type: ignore[union-attr]
        for entry in trusted.split(","):
            assert ipaddress.ip_network(entry.strip()).num_addresses == 1, entry  # no `*`
        others = {ipaddress.ip_address(e) for e in trusted.split(",")} - {proxy}
        assert all(a.is_loopback for a in others), f"{name} trusts {others}"
        # Two scanners through HAProxy are two clients; what a client writes in
        # X-Forwarded-For itself does not count (HAProxy appends the address it saw).
        first = client_seen(trusted, str(proxy), "192.0.2.41")
        second = client_seen(trusted, str(proxy), "192.0.2.42")
        assert (first, second) == ("192.0.2.41", "192.0.2.42")
        assert client_seen(trusted, str(proxy), "192.0.2.42, 192.0.2.41") == "192.0.2.41"
        # Any other peer on the network is itself, whatever it claims.
        other = str(subnet.network_address + 20)
        assert client_seen(trusted, other, "192.0.2.42") == other
        assert client_seen(trusted, str(subnet.network_address + 1), "192.0.2.42") != "192.0.2.42"


def haproxy_servers(config: str) -> list[tuple[str, str, int, int]]:
    """(name, host, port, check port) of each server line."""
    return [
        (name, host, int(port), int(check))
        for name, host, port, check in re.findall(
            r"^\s*server (\S+) (\S+):(\d+) check port (\d+)$", config, re.M
        )
    ]


def test_the_cluster_profile_is_the_ha_guides_layout_wired_together() -> None:
    services = compose()["services"]
    in_cluster = {n for n, s in services.items() if "cluster" in s.get("profiles", [])}
    assert in_cluster == CLUSTER
    for name in CLUSTER:
        assert services[name]["profiles"] == ["cluster"], name
    patroni = yaml.safe_load((HA / "patroni.yml").read_text())
    rest_port = int(patroni["restapi"]["listen"].rsplit(":", 1)[1])
    pg_port = int(patroni["postgresql"]["listen"].rsplit(":", 1)[1])

    # HAProxy runs the guide's file and checks each node's Patroni on its REST port.
    proxy = services["pg-proxy"]
    source, target = proxy["volumes"][0].split(":")[:2]
    assert (ROOT / source).resolve() == HA / "haproxy.cfg"
    assert target == "/usr/local/etc/haproxy/haproxy.cfg"
    config = (HA / "haproxy.cfg").read_text()
    servers = haproxy_servers(config)
    assert {host for _, host, _, _ in servers} == {"pg1", "pg2", "pg3"}
    assert {(port, check) for _, _, port, check in servers} == {(pg_port, rest_port)}

    # Each node names itself, keeps its data in a volume of its own, and runs the image
    # built from docker/ha/Dockerfile's patroni stage.
    volumes = set()
    for node in ("pg1", "pg2", "pg3"):
        spec, env = services[node], services[node]["environment"]
        assert env["PATRONI_NAME"] == node
        assert env["PATRONI_RESTAPI_CONNECT_ADDRESS"] == f"{node}:{rest_port}"
        assert env["PATRONI_POSTGRESQL_CONNECT_ADDRESS"] == f"{node}:{pg_port}"
        assert spec["build"]["target"] == "patroni" and (ROOT / spec["build"]["context"]) == HA
        [volume] = spec["volumes"]
        name, mount = volume.split(":")
        assert name in compose()["volumes"]
        assert patroni["postgresql"]["data_dir"].startswith(mount + "/")
        volumes.add(name)
    assert len(volumes) == 3, "one volume per node"

    # Patroni reaches etcd where the etcd service advertises itself.
    etcd_flags = dict(f.removeprefix("--").split("=", 1) for f in services["etcd"]["command"])
    assert etcd_flags["advertise-client-urls"] == f"http://{patroni['etcd3']['hosts']}"
    assert services["etcd"]["build"]["target"] == "etcd"

    # The service reaches the primary through HAProxy's `listen primary`, as the role
    # Patroni's post_bootstrap script makes, and waits for the nodes to run.
    app, default = services["pickpack-ha"], services["pickpack"]
    url = urlsplit(app["environment"]["PICKPACK_DATABASE_URL"])
    listen = config.split("listen primary", 1)[1]
    assert url.hostname == "pg-proxy" and f"bind :{url.port}\n" in listen
    bootstrap = (HA / "post-bootstrap.sh").read_text()
    assert f"CREATE ROLE {url.username} LOGIN" in bootstrap
    assert f"CREATE DATABASE {url.path.lstrip('/')} OWNER {url.username}" in bootstrap
    assert patroni["bootstrap"]["post_bootstrap"].endswith("pickpack-post-bootstrap")
    assert {n: d["condition"] for n, d in app["depends_on"].items() if n != "pg-proxy"} == {
        "pg1": "service_healthy",
        "pg2": "service_healthy",
        "pg3": "service_healthy",
    }
    # Its reads that may lag go to HAProxy's `listen replicas`, which checks Patroni's /sync.
    replica = urlsplit(app["environment"]["PICKPACK_DATABASE_REPLICA_URL"])
    replicas = config.split("listen replicas", 1)[1]
    assert replica.hostname == "pg-proxy" and f"bind :{replica.port}\n" in replicas
    assert "uri /sync" in replicas and (replica.username, replica.path) == (url.username, url.path)
    own = {"PICKPACK_DATABASE_URL", "PICKPACK_DATABASE_REPLICA_URL"}
    others = {k: v for k, v in app["environment"].items() if k not in own}
    assert others == {k: v for k, v in default["environment"].items() if k not in own}


def test_the_cluster_loses_no_acknowledged_commit_and_runs_the_chosen_patroni() -> None:
    patroni = yaml.safe_load((HA / "patroni.yml").read_text())
    dcs = patroni["bootstrap"]["dcs"]
    assert dcs["synchronous_mode"] is True
    # Patroni's rule for its timings: a leader's loop and two retries fit in the ttl.
    assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]
    dockerfile = (HA / "Dockerfile").read_text()
    [version] = re.findall(r"^ARG PATRONI_VERSION=(\S+)$", dockerfile, re.M)
    assert version == PATRONI_VERSION
    assert not re.search(r"^#\s*syntax\s*=", dockerfile, re.M | re.I)
    for word, args in dockerfile_instructions(HA / "Dockerfile"):
        if word == "COPY":
            source = shlex.split(args)[0]
            assert (HA / source).is_file(), f"COPY {source}: not in docker/ha"
    assert os.access(HA / "post-bootstrap.sh", os.X_OK)
