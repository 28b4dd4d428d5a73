"""The eventId content hash is over the request's fields by name, not over a class."""

from __future__ import annotations

import dataclasses
import hashlib

import orjson

from devtools.harness.support import packing_event
from ledger.domain.packing import PackingEvent, TokenFingerprints, Verdict, decide


@dataclasses.dataclass(frozen=True)
class PackingEventWithMore(PackingEvent):
    """The event class after a later release gave it a field (not sent by scanners)."""

    station: str | None = None


def test_a_field_added_to_the_class_changes_no_hash_and_a_retry_stays_a_duplicate() -> None:
    before = packing_event("s1", packed=2)
    after = PackingEventWithMore(**dataclasses.asdict(before), station="pack-3")
    assert after.content_hash() == before.content_hash()
    recorded = {(before.tenant, before.event_id): before.content_hash()}
    [decision] = decide([after], recorded, set())
    assert decision.verdict is Verdict.DUPLICATE


def test_the_hash_is_canonical_json_of_the_specs_field_names() -> None:
    ev = packing_event("s1", packed=2, supplier_id="sup")
    sent = {
        "eventId": "s1", "orderNumber": ev.order_id, "productId": ev.product_id,
        "unit": ev.unit, "timestamp": ev.event_time, "site": ev.site, "pickedAmount": 0,
        "packedAmount": 2, "canceledAmount": 0, "supplierId": "sup",
    }  # fmt: skip
    expected = hashlib.sha256(orjson.dumps(sent, option=orjson.OPT_SORT_KEYS)).digest()
    assert ev.content_hash() == expected
    other = dataclasses.replace(ev, packed=3)
    assert other.content_hash() != ev.content_hash()


def test_hashes_stored_before_the_canonical_form_still_identify_a_retry() -> None:
    ev = packing_event("s1", packed=2)
    # what the first releases stored: the dataclass itself, serialised with sorted keys
    old = hashlib.sha256(orjson.dumps(ev, option=orjson.OPT_SORT_KEYS)).digest()
    assert old != ev.content_hash() and ev.legacy_content_hash() == old
    [same] = decide([ev], {(ev.tenant, ev.event_id): old}, set())
    assert same.verdict is Verdict.DUPLICATE
    [changed] = decide([dataclasses.replace(ev, packed=5)], {(ev.tenant, "s1"): old}, set())
    assert changed.verdict is Verdict.CONFLICT


def test_token_fingerprints_are_keyed_and_never_the_token() -> None:
    one, other = TokenFingerprints(b"k" * 32), TokenFingerprints(b"j" * 32)
    fp = one("secret-saas-token")
    assert fp is not None and "secret-saas-token" not in fp and fp.startswith("hmac-sha256:")
    assert one("secret-saas-token") == fp  # the same token, the same fingerprint
    assert other("secret-saas-token") != fp  # another key, another fingerprint
    assert one(None) is None
