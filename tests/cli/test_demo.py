"""`pickpack demo` against the running service: a tiny day at high speed, every order
finished or cancelled, scans recorded once however often they were sent."""

from __future__ import annotations

import pytest

from cli.errors import Exit
from cli.main import main
from devtools.harness.service import Service, auth, token

DAY = "2026-12-01"


def test_a_tiny_demo_day_packs_every_order(
    service: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["demo", "--url", service.url, "--token", token("demo"), "--orders", "6"]
    argv += ["--scanners", "3", "--speed", "1000", "--date", DAY, "--seed", "5"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "registered 6 orders for site main on 2026-12-01" in out
    assert f"{service.url}/board#tenant=demo&token=" in out
    assert "&site=main&date=2026-12-01" in out
    statuses = []
    for n in range(1, 7):
        answer = service.client.get(f"/pick-pack/demo/orders/D1201-{n:03d}", headers=auth())
        assert answer.status_code == 200
        statuses.append(answer.json()["packingStatus"])
    assert set(statuses) <= {"PACKED", "CANCELLED"}, statuses
    assert "PACKED" in statuses
    scans = service.events().json()
    assert scans
    sent = int(out.split("done: ", 1)[1].split(" scans sent", 1)[0])
    resent = int(out.split("(", 1)[1].split(" sent twice", 1)[0])
    assert len(scans) == sent - resent  # a scan sent twice is recorded once
    assert all(s["orderNumber"].startswith("D1201-") for s in scans)


def test_a_refused_token_stops_the_demo(
    service: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    """Told as every command's failure is (cli/errors.py, docs/reference/cli.md "Exit codes"):
    one sentence on stderr, prefixed `pickpack:`, saying what to do; code 1, the service
    refused what the demo sent."""
    argv = ["demo", "--url", service.url, "--token", "nonsense", "--orders", "1"]
    assert main(argv) == Exit.ITEMS_REFUSED
    err = capsys.readouterr().err
    assert err.startswith("pickpack: registering D"), err
    assert err.count("\n") == 1 and err.endswith(".\n"), err
    assert "401" in err and "--token" in err and "Traceback" not in err
