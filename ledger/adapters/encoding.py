"""Encoding ledger events into the library's stored format, and the event mapper.

The stored format is the library's (its Mapper and JSON transcoder, orjson-written);
these helpers write the same bytes faster on the ingest path (tests/unit/test_transcoder.py
holds them byte for byte equal).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import orjson
from eventsourcing.persistence import Mapper, Transcoder
from eventsourcing.utils import get_topic

from ledger.adapters.transcoder import OrjsonTranscoder
from ledger.domain.events import PackingEventRecorded
from ledger.domain.packing import Attribution, PackingEvent


def make_transcoder() -> Transcoder:
    """The library's JSON format with its UUID, Decimal and datetime transcodings."""
    return OrjsonTranscoder()


def make_mapper() -> Mapper[UUID]:
    """The library's mapper with our transcoder: how every ledger event is stored."""
    return Mapper(transcoder=make_transcoder())


PACKING_EVENT_TOPIC = get_topic(PackingEventRecorded)


def recorded_event(
    event: PackingEvent, who: Attribution, stream: UUID, version: int, timestamp: datetime
) -> PackingEventRecorded:
    """The domain event that records an accepted scan in its line's stream."""
    return PackingEventRecorded(
        originator_id=stream,
        originator_version=version,
        timestamp=timestamp,
        tenant=event.tenant,
        order_id=event.order_id,
        event_id=event.event_id,
        product_id=event.product_id,
        delivery_cycle=event.delivery_cycle,
        picked=event.picked,
        packed=event.packed,
        canceled=event.canceled,
        supplier_id=event.supplier_id,
        unit=event.unit,
        event_time=event.event_time,
        site=event.site,
        book_product=event.book_product,
        user=who.user,
        saas_token=who.saas_token,
    )


def stored_state(
    event: PackingEvent, who: Attribution, recorded_at: dict[str, str]
) -> bytes | None:
    """The stored state of :func:`recorded_event`'s event, as the library's mapper writes it.

    Straight from the scan: the mapper builds the domain event, copies its attributes
    and checks each value's type first, about a fifth of the append's Python time per
    batch (`python bench/append.py`, docs/BENCHMARKS.md). `recorded_at` is the timestamp in the
    library's datetime transcoding. tests/unit/test_transcoder.py holds the two byte for
    byte equal. None if orjson cannot write a value (an integer beyond 64 bits): the
    mapper then decides, as it would have.
    """
    try:
        return orjson.dumps(
            {
                "timestamp": recorded_at,
                "tenant": event.tenant,
                "order_id": event.order_id,
                "event_id": event.event_id,
                "product_id": event.product_id,
                "delivery_cycle": event.delivery_cycle,
                "picked": event.picked,
                "packed": event.packed,
                "canceled": event.canceled,
                "supplier_id": event.supplier_id,
                "unit": event.unit,
                "event_time": event.event_time,
                "site": event.site,
                "book_product": event.book_product,
                "user": who.user,
                "saas_token": who.saas_token,
            }
        )
    except orjson.JSONEncodeError:
        return None
