"""How ledger/adapters/state-dictionary-v1.zdict was made (it is never made again).

    python -m devtools.state_dictionary OUT

Trains a zstd dictionary on stored states written by the ledger's own encoders (the
library's mapper, without compression) for events of every class, packing events most,
with values of the shapes scanners and order documents send (UUID, hex and short event
ids, order and product numbers, timestamps). A trained dictionary carries zstd's entropy
tables as well as the repeated text, which is what pays on states this short
(`python bench/compression.py` prints the sizes).

The dictionary is part of the stored format (ledger/adapters/compression.py): states
compressed with it are read with it, so the file in the package is never replaced. A
better one would be dictionary 2, with a mark of its own.
"""

from __future__ import annotations

import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import zstandard

from ledger.adapters.encoding import make_mapper
from ledger.domain.events import (
    AssigneeAdded,
    AssigneeRemoved,
    CorrectionRecorded,
    HoldingAreaAssigned,
    LedgerEvent,
    OrderCancelled,
    OrderFinished,
    OrderRegistered,
    PackagingChanged,
    PackingEventRecorded,
    PackingStatusChanged,
    line_stream_id,
    order_stream_id,
)

SIZE = 2048
SAMPLES = 12000


def _event_id(rng: random.Random, i: int) -> str:
    return rng.choice(
        [
            str(uuid.UUID(int=rng.getrandbits(128))),
            f"e{i}",
            f"SCAN-{rng.randrange(10**9)}",
            uuid.UUID(int=rng.getrandbits(128)).hex,
        ]
    )


def _sample(rng: random.Random, i: int) -> LedgerEvent:
    tenant = rng.choice(["demo", "acme", "warehouse01", "bench"])
    order = rng.choice(
        [
            f"o{rng.randrange(10**5)}",
            f"EON{rng.randrange(10**7)}",
            str(uuid.UUID(int=rng.getrandbits(128))),
        ]
    )
    product = rng.choice(
        [
            f"p{rng.randrange(100)}",
            f"prod-{rng.randrange(10**5):05d}",
            uuid.UUID(int=rng.getrandbits(128)).hex[:24],
        ]
    )
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(
        seconds=rng.randrange(3 * 10**7), microseconds=rng.randrange(10**6)
    )
    user = rng.choice([None, "scanner-7", "packer@example.com", f"client-{rng.randrange(99)}"])
    common: dict[str, Any] = {"tenant": tenant, "order_id": order, "timestamp": at}
    kind = i % 20
    if kind < 14:  # most stored events are scans
        return PackingEventRecorded(
            originator_id=line_stream_id(tenant, order, product),
            originator_version=1,
            event_id=_event_id(rng, i),
            product_id=product,
            delivery_cycle=rng.choice([None, "2026-11-30"]),
            picked=rng.randrange(3),
            packed=rng.randrange(3),
            canceled=rng.randrange(2),
            supplier_id=rng.choice([None, "supplier-1"]),
            unit=rng.choice(["pc", "kg", "pc"]),
            event_time=at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
            site=rng.choice(["main", "berlin"]),
            book_product=rng.choice([None, True]),
            user=user,
            saas_token=rng.choice([None, uuid.UUID(int=rng.getrandbits(128)).hex]),
            **common,
        )
    stream: dict[str, Any] = {
        "originator_id": order_stream_id(tenant, order),
        "originator_version": 2,
    }
    if kind == 14:
        entries = [
            {"id": n, "entryId": str(n), "productId": f"p{n}", "totalCount": n, "unit": "pc"}
            for n in range(1, rng.randrange(2, 6))
        ]
        return OrderRegistered(
            document={"id": order, "siteCode": "main", "entries": entries}, **stream, **common
        )
    if kind == 15:
        return PackingStatusChanged(
            status=rng.choice(["IN_PROGRESS", "PACKED", "PRE_PACKED"]),
            user=user,
            **stream,
            **common,
        )
    if kind == 16:
        return AssigneeAdded(
            assignee={"id": "u1", "firstName": "Ann", "lastName": "Lee"},
            replaced=[],
            **stream,
            **common,
        )
    if kind == 17:
        return rng.choice(
            [
                AssigneeRemoved(assignee_id="u1", **stream, **common),
                HoldingAreaAssigned(number=rng.randrange(1, 500), **stream, **common),
                OrderCancelled(user=user, **stream, **common),
                PackagingChanged(
                    packaging=[{"entryId": "1", "packedCount": 1}], **stream, **common
                ),
            ]
        )
    if kind == 18:
        return OrderFinished(
            recalculation_id=str(uuid.UUID(int=rng.getrandbits(128))),
            entries=[{"itemYrn": "1", "packedAmount": 2}],
            user=user,
            **stream,
            **common,
        )
    return CorrectionRecorded(
        originator_id=line_stream_id(tenant, order, product),
        originator_version=2,
        correction_id=str(uuid.UUID(int=rng.getrandbits(128))),
        product_id=product,
        picked=0,
        packed=-1,
        canceled=0,
        unit="pc",
        reason="miscounted",
        user=user,
        saas_token=None,
        **common,
    )


def samples(seed: int = 20261130) -> list[bytes]:
    rng = random.Random(seed)
    mapper = make_mapper(compress=False)
    return [mapper.to_stored_event(_sample(rng, i)).state for i in range(SAMPLES)]


def main() -> None:
    out = Path(sys.argv[1])
    states: list[bytes | bytearray | memoryview] = list(samples())
    trained = zstandard.train_dictionary(SIZE, states, level=3)
    out.write_bytes(trained.as_bytes())
    print(f"{out}: {len(trained.as_bytes())} bytes from {SAMPLES} states")


if __name__ == "__main__":
    main()
