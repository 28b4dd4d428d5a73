"""docs/how-to/cutover.md, run: every `pickpack` command of the guide, in its order, against a
fake Emporix and a fake Order Service, with the service itself over real HTTP.

The commands are read from the guide's ```sh blocks, so the guide cannot drift from what
works: a changed command runs as changed, and a command added, dropped or moved fails
the check of their sequence below.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from copy import deepcopy
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from devtools.fake_emporix import FakeEmporix
from devtools.fake_order_service import FakeOrderService
from devtools.harness.service import running
from devtools.harness.support import FAST_RECALCULATION as FAST
from devtools.harness.support import wait_for
from tests.helpers.orders import sales_order_example

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "how-to" / "cutover.md"
TENANT = "acme"


REHEARSAL = "\n## Rehearse on one machine"


def guide_blocks() -> list[str]:
    """The shell blocks of the guide's steps (shown, not run by the doc harness: they name
    a real Emporix). The rehearsal section after them runs as written in
    tests/docs/test_doc_examples.py."""
    steps = GUIDE.read_text().split(REHEARSAL, 1)[0]
    return re.findall(r"```sh(?: no-run)?\n(.*?)```", steps, flags=re.S)


def guide_commands() -> list[str]:
    """The guide's `pickpack ...` lines, comments cut, in order."""
    lines = [
        line.split("  #")[0].strip() for block in guide_blocks() for line in block.splitlines()
    ]
    return [line for line in lines if line.startswith("pickpack ")]


def guide_exports() -> set[str]:
    return {
        m.group(1)
        for block in guide_blocks()
        for m in re.finditer(r"^export (\w+)=", block, flags=re.M)
    }


def sales_order(order_id: str, site: str, product: str, count: int) -> dict[str, Any]:
    order = deepcopy(sales_order_example())
    order.update(id=order_id, siteCode=site, status="CREATED")
    order["deliveryWindow"] = {**order["deliveryWindow"], "deliveryDate": "2026-12-01"}
    entry = order["entries"][0]
    entry["id"] = f"{order_id}-{product}"
    entry["product"] = {**entry.get("product", {}), "id": product}
    entry["orderedAmount"] = count
    order["entries"] = [entry]
    return order


def emporix_event(
    event_id: str, order: str, product: str, when: str, **amounts: int
) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "orderNumber": order,
        "productId": product,
        "timestamp": when,
        "unit": "H87",
        "site": "main",
        "user": "picker-a",
        **amounts,
    }


@pytest.fixture
def fakes() -> Iterator[tuple[FakeEmporix, FakeOrderService]]:
    emporix = FakeEmporix().start()
    order_service = FakeOrderService().start()
    yield emporix, order_service
    emporix.stop()
    order_service.stop()


def test_the_cutover_guide_runs_as_written(
    fakes: tuple[FakeEmporix, FakeOrderService],
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emporix, order_service = fakes
    commands = guide_commands()
    kinds = [" ".join(shlex.split(c)[1:3]) for c in commands]
    assert kinds == [
        "clients add",
        "orders import",
        "emporix import-events",
        "serve",
        "emporix import-events",
        "emporix reconcile",
    ]
    env = {
        "PICKPACK_DATABASE_URL": db_url,
        "PICKPACK_DATA_DIR": str(tmp_path / "cli"),
        "PICKPACK_ORDER_SERVICE_URL": f"{order_service.url}/order-v2",
        "PICKPACK_ORDER_SERVICE_TOKEN": "os-token",
        "EMPORIX_URL": emporix.url,
        "EMPORIX_CLIENT_ID": "emporix-importer",
        "EMPORIX_CLIENT_SECRET": "emporix-secret",
        "SWITCHED_AT": "2026-12-01T05:00:00Z",
    }
    assert guide_exports() <= set(env), "the test provides every variable the guide sets"
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def run(command: str) -> tuple[int, str, str]:
        argv = shlex.split(os.path.expandvars(command))
        assert "$" not in " ".join(argv), f"unset variable in {command}"
        code = main(argv[1:])
        out, err = capsys.readouterr()
        return code, out, err

    # What Emporix and the Order Service hold before the cutover: ORD-1 is half packed
    # (2 of 3) on Emporix, ORD-2 done; OTHER belongs to another site.
    emporix.add_client("emporix-importer", "emporix-secret", TENANT)
    emporix.add_events(
        TENANT,
        [
            emporix_event("e1", "ORD-1", "p1", "2026-11-30T16:00:00.000Z", packedAmount=1),
            emporix_event("e2", "ORD-1", "p1", "2026-11-30T16:05:00.000Z", packedAmount=1),
            emporix_event("e3", "ORD-2", "p2", "2026-11-30T17:00:00.000Z", packedAmount=1),
        ],
    )
    for order_id, site, product, count in (
        ("ORD-1", "main", "p1", 3),
        ("ORD-2", "main", "p2", 1),
        ("OTHER", "north", "p1", 1),
    ):
        order_service.register_order(TENANT, order_id, sales_order(order_id, site, product, count))

    service_env = {**FAST, "PICKPACK_ORDER_SERVICE_URL": env["PICKPACK_ORDER_SERVICE_URL"]}
    with running(db_url, tmp_path, service_env) as svc:
        # 1. clients
        code, out, _ = run(commands[0])
        assert code == 0
        client_id = re.search(r"client_id=(\S+)", out).group(1)  # type: ignore[union-attr]
        client_secret = re.search(r"client_secret=(\S+)", out).group(1)  # type: ignore[union-attr]

        # 2. orders
        code, _, err = run(commands[1])
        assert code == 0, err
        assert "imported 2 of 2 orders" in err

        # 3. history
        code, out, err = run(commands[2])
        assert (code, out.strip()) == (
            0,
            "read 3, recorded 3, already there 0, conflicting 0, refused 0",
        ), err

        # 4. side by side: `pickpack serve` is the service this test runs; a scanner still
        # on Emporix records one more scan there.
        assert commands[3] == "pickpack serve"
        emporix.add_events(
            TENANT,
            [emporix_event("e4", "ORD-2", "p2", "2026-12-01T04:00:00.000Z", pickedAmount=1)],
        )

        # 5. switch: a scanner now gets its token here, scans and finishes ORD-1.
        code, out, err = run(commands[4])
        assert (code, out.strip()) == (
            0,
            "read 4, recorded 1, already there 3, conflicting 0, refused 0",
        ), err
        token = svc.client.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret,
                "scope": f"tenant={TENANT} pickpack.pickpack_view pickpack.pickpack_manage",
            },
        )
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}", "saas-token": "s1"}
        scan = {
            "eventId": "here-1",
            "orderNumber": "ORD-1",
            "productId": "p1",
            "unit": "H87",
            "site": "main",
            "packedAmount": 1,
            "timestamp": "2026-12-01T06:00:00.000Z",
        }
        r = svc.client.post(f"/pick-pack/{TENANT}/events", json=scan, headers=headers)
        assert r.status_code == 200, r.text
        r = svc.client.post(f"/pick-pack/{TENANT}/orders/ORD-1/finish", headers=headers)
        assert r.status_code == 200, r.text
        [sent] = wait_for(lambda: order_service.calculations("ORD-1"))
        assert [(e["entryId"], e["deliveredAmount"]) for e in sent.body["entries"]] == [
            ("ORD-1-p1", 3)
        ]

        # 6. reconcile: both agree up to the switch; without --until the scan made here
        # after the switch is a difference.
        code, out, err = run(commands[5])
        assert code == 0, out + err
        code, out, _ = run(commands[5].replace(' --until "$SWITCHED_AT"', ""))
        assert code == 1
        assert "ORD-1\tp1\tH87\t0/2/0\t0/3/0" in out
