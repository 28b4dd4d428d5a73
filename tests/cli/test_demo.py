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
    resent = int(out.split("scans sent (", 1)[1].split(" sent twice", 1)[0])
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
    assert err.startswith("pickpack: reading the day's orders: "), err
    assert err.count("\n") == 1 and err.endswith(".\n"), err
    assert "401" in err and "--token" in err and "Traceback" not in err


def test_a_second_demo_on_the_same_day_packs_new_orders(
    service: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first run cancels some orders; a second run on the same day must not stumble
    over them (a cancelled order refuses every write): it takes the next numbers."""
    argv = ["demo", "--url", service.url, "--token", token("demo"), "--orders", "12"]
    argv += ["--scanners", "3", "--speed", "1000", "--date", DAY, "--seed", "5"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "(D1201-001 to D1201-012)" in first
    assert main(argv) == 0, capsys.readouterr().err
    second = capsys.readouterr().out
    assert "registered 12 orders for site main on 2026-12-01 (D1201-013 to D1201-024)" in second
    listed = service.client.get(
        "/pick-pack/demo/orders",
        params={"siteCode": "main", "deliveryDate": DAY, "includeCancelled": "true"},
        headers=auth(),
    ).json()
    assert len(listed) == 24
    assert {o["packingStatus"] for o in listed} <= {"PACKED", "CANCELLED"}


def test_a_cancelled_order_is_named_as_the_cause(
    service: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 409 for a cancelled order says so, not "check --url, --tenant and --token"."""
    from cli.demo import DemoStopped, _check

    answer = service.client.patch(
        "/pick-pack/demo/orders/nobody", json={"packingStatus": "CANCELLED"}, headers=auth()
    )
    assert answer.status_code in (400, 404)  # not registered: unrelated, shown as said
    service.client.put(
        "/pick-pack/demo/orders/gone",
        json={"entries": [{"productId": "p", "totalCount": 1}]},
        headers=auth(),
    )
    headers = {**auth(), "saas-token": "t"}
    cancel = {"packingStatus": "CANCELLED"}
    service.client.patch("/pick-pack/demo/orders/gone", json=cancel, headers=headers)
    refused = service.client.put(
        "/pick-pack/demo/orders/gone",
        json={"entries": [{"productId": "p", "totalCount": 1}]},
        headers=auth(),
    )
    assert refused.status_code == 409
    with pytest.raises(DemoStopped) as stopped:
        _check(refused, "registering gone")
    said = str(stopped.value)
    assert "cancelled" in said and "--date" in said
    assert "check --url, --tenant and --token" not in said
