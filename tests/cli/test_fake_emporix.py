"""`pickpack fake-emporix` as a user starts it: `--help` names and explains every option,
and a seeded fake serves a client's token, the tenant's history and, under /order-v2, the
matching open sales orders."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest

from cli.main import main
from devtools.fake_emporix import FakeEmporix, seed

OPTIONS = (
    "--host",
    "--port",
    "--client",
    "--tenant",
    "--days",
    "--orders",
    "--site",
    "--until",
    "--seed",
)


def test_help_names_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["fake-emporix", "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    for option in OPTIONS:
        described = re.search(rf"^\s+{option}\b.*\n(?:\s{{20,}}.*\n)*", shown, flags=re.M)
        assert described is not None, f"{option} missing from --help:\n{shown}"
        assert len(described.group(0).split()) > 2, f"{option} has no description"
    assert "cutover" in shown


def test_a_seeded_fake_serves_the_client_the_history_and_the_open_orders() -> None:
    fake = FakeEmporix().start()
    try:
        fake.add_client("rehearsal", "s3cret", "acme")
        today = datetime.now(UTC).date()
        orders, events = seed(fake, "acme", "main", days=2, orders=6, until=today)
        assert (orders, events) == (12, len(fake.state.events["acme"]))
        got = httpx.post(
            f"{fake.url}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "rehearsal",
                "client_secret": "s3cret",
                "scope": "tenant=acme pickpack.pickpack_view",
            },
        )
        bearer = {"Authorization": f"Bearer {got.json()['access_token']}"}
        feed = httpx.get(f"{fake.url}/pick-pack/acme/events", headers=bearer).json()
        assert len(feed) == events > 0
        listed = httpx.get(
            f"{fake.url}/order-v2/acme/salesorders",
            params={"q": f'siteCode:main deliveryWindow.deliveryDate:>="{today}" status:(CREATED)'},
            headers=bearer,
        )
        assert listed.status_code == 200
        assert listed.headers["X-Total-Count"] == "6"  # today's orders, all still open
        one = listed.json()[0]["id"]
        single = httpx.get(f"{fake.url}/order-v2/acme/salesorders/{one}", headers=bearer)
        assert single.status_code == 200 and single.json()["id"] == one
    finally:
        fake.stop()
