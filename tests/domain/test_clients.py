"""OAuth clients' scopes (ledger/domain/clients.py) and the token service's pure parts.

No database."""

from __future__ import annotations

import pytest

from ledger.domain.clients import (
    MANAGE,
    VIEW,
    Grant,
    RequestedScope,
    ScopeRefused,
    check_client_scopes,
    grant,
    parse_scope,
)
from ledger.services.tokens import RevocationList, Throttle, hash_secret, secret_matches


def test_a_scope_names_its_tenant_and_the_wanted_scopes_once_each() -> None:
    parsed = parse_scope(f"tenant=acme {VIEW}  {MANAGE} {VIEW}")
    assert parsed == RequestedScope("acme", (VIEW, MANAGE))
    assert parse_scope("tenant=acme") == RequestedScope("acme", ())


@pytest.mark.parametrize(
    ("scope", "says"),
    [
        (None, "tenant="),
        ("", "tenant="),
        (f"{VIEW} {MANAGE}", "tenant="),
        ("tenant=acme tenant=other", "exactly one tenant"),
        ("tenant=Acme", "^[a-z][a-z0-9]+$"),
        ("tenant=ab", "3 to 16"),
        ("tenant=", "3 to 16"),
        ('tenant=acme pick"pack', "not a valid scope token"),
    ],
)
def test_a_scope_without_one_well_formed_tenant_is_refused(scope: str | None, says: str) -> None:
    with pytest.raises(ScopeRefused) as refused:
        parse_scope(scope)
    assert says in str(refused.value)


def test_the_grant_is_the_request_intersected_with_what_the_client_holds() -> None:
    both = parse_scope(f"tenant=acme {VIEW} {MANAGE}")
    assert grant(both, "acme", [VIEW]) == Grant("acme", (VIEW,))
    assert grant(both, "acme", [MANAGE, VIEW]) == Grant("acme", (VIEW, MANAGE))
    # Only the tenant: everything the client holds (RFC 6749's default scope).
    assert grant(parse_scope("tenant=acme"), "acme", [MANAGE]).scopes == (MANAGE,)
    assert grant(both, "acme", [VIEW, MANAGE]).scope_text == f"tenant=acme {VIEW} {MANAGE}"


def test_another_tenant_an_unknown_scope_or_nothing_held_is_refused() -> None:
    with pytest.raises(ScopeRefused, match="not registered for tenant 'other'"):
        grant(parse_scope(f"tenant=other {VIEW}"), "acme", [VIEW])
    with pytest.raises(ScopeRefused, match=r"unknown scope 'order\.order_read'"):
        grant(parse_scope(f"tenant=acme {VIEW} order.order_read"), "acme", [VIEW])
    with pytest.raises(ScopeRefused, match="none of the requested scopes"):
        grant(parse_scope(f"tenant=acme {MANAGE}"), "acme", [VIEW])


def test_a_client_is_registered_only_with_known_scopes() -> None:
    assert check_client_scopes([MANAGE, VIEW, VIEW]) == (VIEW, MANAGE)
    with pytest.raises(ValueError, match="unknown scope"):
        check_client_scopes([VIEW, "admin"])
    with pytest.raises(ValueError, match="at least one"):
        check_client_scopes([])


def test_a_secret_is_kept_as_a_salted_scrypt_hash_that_only_it_matches() -> None:
    stored = hash_secret("right")
    assert stored.startswith("scrypt$16384$8$1$") and "right" not in stored
    assert hash_secret("right") != stored  # salted
    assert secret_matches("right", stored)
    assert not secret_matches("wrong", stored)
    assert not secret_matches("right", "not-a-hash")


def test_the_throttle_refuses_past_its_bounds_per_client_and_address_and_per_address() -> None:
    throttle = Throttle(client_limit=3, address_limit=5, window=60)
    for i in range(3):
        assert throttle.attempt("a", "10.0.0.1", now=100 + i) == 0
    assert throttle.attempt("a", "10.0.0.1", now=110) == pytest.approx(50)  # client bound
    # ...from that address only: a third party's failures never lock the client out
    # where it works from (client ids are not secret).
    assert throttle.attempt("a", "10.0.0.2", now=110) == 0
    assert throttle.attempt("b", "10.0.0.1", now=110) == 0  # another client, same address
    assert throttle.attempt("c", "10.0.0.1", now=111) == 0
    assert throttle.attempt("d", "10.0.0.1", now=112) == pytest.approx(48)  # address bound
    assert throttle.attempt("d", "10.0.0.9", now=112) == 0
    assert throttle.attempt("a", "10.0.0.3", now=160.5) == 0  # the first aged out


def test_a_right_secret_is_not_counted_as_a_failure() -> None:
    throttle = Throttle(client_limit=2, address_limit=10, window=60)
    for i in range(5):
        assert throttle.attempt("a", "x", now=float(i)) == 0
        throttle.succeeded("a", "x", now=float(i))
    assert throttle.attempt("a", "x", now=6) == 0


def test_the_throttle_keeps_a_bounded_number_of_keys() -> None:
    throttle = Throttle(client_limit=3, address_limit=3, window=60, max_keys=100)
    for i in range(1000):
        throttle.attempt(f"c{i}", f"a{i}", now=float(i))
        assert len(throttle._attempts) <= 101


def test_the_revocation_list_is_reloaded_once_it_is_older_than_its_lifetime() -> None:
    loads: list[frozenset[str]] = []
    current = {"revoked": frozenset[str]()}

    def load() -> frozenset[str]:
        loads.append(current["revoked"])
        return current["revoked"]

    revocations = RevocationList(load, lifetime=0.2)
    assert not revocations.is_revoked("pp_a")
    current["revoked"] = frozenset({"pp_a"})
    assert not revocations.is_revoked("pp_a")  # cached
    assert len(loads) == 1
    import time

    time.sleep(0.25)
    assert revocations.stale()
    assert revocations.is_revoked("pp_a")
    assert len(loads) == 2
