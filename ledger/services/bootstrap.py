"""Everything a running service holds: settings, database, store, workers.

Built once per process (the API's lifespan, or a CLI command) so that HTTP handlers
stay thin: they validate, call into the runtime, and shape the answer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ledger.adapters import connection, keys, outbox_store
from ledger.adapters.client_store import revoked_ids
from ledger.adapters.database import Database, provision
from ledger.adapters.event_store import EventStore
from ledger.adapters.migrate import migrate
from ledger.config import Settings
from ledger.domain.packing import TokenFingerprints
from ledger.services import tokens
from ledger.services.changes import CommitBell
from ledger.services.group_commit import GroupCommitter
from projections.read import Freshness

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    database: Database
    store: EventStore
    committer: GroupCommitter
    fingerprints: TokenFingerprints
    workers: list[Any] = field(default_factory=list)
    # Rung after every commit of facts: the change feed's long-polls and streams wait on it.
    bell: CommitBell = field(default_factory=CommitBell)
    _stale_reads: int = field(default=0, init=False, repr=False)
    _stale_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    # POST /oauth/token's use case, the key it signs with, and the revoked clients the
    # API's verifier consults (ledger/services/tokens.py); api.app builds the verifier.
    token_service: tokens.TokenService | None = None
    signer: tokens.Signer | None = None
    revocations: tokens.RevocationList | None = None

    @classmethod
    def start(
        cls,
        settings: Settings | None = None,
        database: Database | None = None,
        run_workers: bool = True,
    ) -> Runtime:
        settings = settings or Settings.from_env()
        # First, so an unreadable key file stops start-up before anything runs. None when
        # only an identity provider is trusted: tokens signed here would be refused here,
        # and no dev secret should appear in the data dir.
        signer = tokens.Signer.from_settings(settings) if tokens.issues_tokens(settings) else None
        # Every connection from here on is bounded (ledger/adapters/connection.py).
        connection.configure(
            settings.database_connect_timeout_seconds, settings.database_timeout_seconds
        )
        database = database or provision(settings)
        migrate(database.url)
        store = EventStore.from_url(database.url, compress=settings.compress_events)
        store.on_recorded.append(outbox_store.on_recorded)  # finish queues its request atomically
        fingerprints = TokenFingerprints(keys.fingerprint_key(store))
        if run_workers:
            from ledger.services.recalculation import resume_jobs

            resumed = resume_jobs(store)  # jobs a dead process left half-queued
            if resumed:
                log.info("resumed %d interrupted recalculation job(s)", resumed)
        committer = GroupCommitter(store, write_timeout=settings.write_timeout_seconds)
        committer.start()
        runtime = cls(settings, database, store, committer, fingerprints)
        committer.on_commit.append(runtime.bell.ring)
        store.on_committed.append(runtime.bell.ring)
        runtime.signer = signer
        runtime.revocations = tokens.RevocationList(
            lambda: _revoked_ids(store), settings.revocation_cache_seconds
        )
        runtime.token_service = tokens.TokenService(
            connect=store.datastore.get_connection,
            signer=signer,
            lifetime=settings.token_lifetime_seconds,
            issuer=tokens.own_issuer(settings),
            audience=tokens.own_audience(settings),
        )
        if run_workers:
            runtime.start_workers()
        return runtime

    def start_workers(self) -> None:
        """Projection and outbox workers that run inside `serve`."""
        from projections.workers import start_projection_workers

        for runner in start_projection_workers(self):
            # This process's own appends wake its runner directly; NOTIFY (sent at most
            # every few milliseconds) is for the other processes' runners.
            self.committer.on_commit.append(runner.wake.set)
            # Other processes' appends reach this one through the runner's LISTEN.
            runner.on_notify.append(self.bell.ring)
            self.workers.append(runner)
        dispatcher = start_outbox_dispatcher(self.settings, self.database.url)
        if dispatcher is not None:
            self.workers.append(dispatcher)

    @contextmanager
    def read_views(self, tenant: str, views: Sequence[str]) -> Iterator[tuple[Any, Freshness]]:
        """A pooled autocommit connection (dict rows) for the read side, once `views`
        have applied `tenant`'s latest recorded event, and how fresh they are.

        Read-your-writes per tenant (projections/read.py): other tenants' events are
        not waited for. The wait is bounded and holds no connection; one that times
        out is counted (`stale_reads`, exposed at /metrics) and its Freshness says how
        far behind the views were. When the views are there already, the usual case,
        the look and the reads share one checkout (each checkout costs a round trip:
        the pool checks the connection).
        """
        from projections.read import look, wait_for_mark

        connect = self.store.datastore.get_connection
        with connect() as conn:
            found = look(conn, tenant, views)
            if isinstance(found, Freshness):
                yield conn, found
        if isinstance(found, Freshness):
            return
        freshness = self._counted(wait_for_mark(connect, tenant, found, views))
        with connect() as conn:
            yield conn, freshness

    def _counted(self, freshness: Freshness) -> Freshness:
        if freshness.stale:
            with self._stale_lock:
                self._stale_reads += 1
        return freshness

    @property
    def stale_reads(self) -> int:
        """Reads answered from views behind their tenant's mark (the wait timed out)."""
        with self._stale_lock:
            return self._stale_reads

    def orders_lookup(
        self, tenant: str, pairs: set[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], list[dict[str, Any]]], Freshness | None]:
        """Registered order entries for (order, product) pairs, for packedAmountInPc,
        and how fresh the view they came from was (None: nothing was looked up)."""
        from projections.read import order_entries

        if not pairs:
            return {}, None
        with self.read_views(tenant, ("order_status",)) as (conn, freshness):
            return order_entries(conn, tenant, pairs), freshness

    def stop(self) -> None:
        for worker in reversed(self.workers):
            worker.stop()
        self.workers.clear()
        self.committer.stop()
        self.store.close()


def start_outbox_dispatcher(settings: Settings, database_url: str) -> Any:
    """The recalculation dispatcher, or None: without an Order Service URL rows wait PENDING."""
    if not settings.order_service_url:
        log.info("PICKPACK_ORDER_SERVICE_URL is not set: recalculations stay queued")
        return None
    from ledger.adapters.order_service import OrderServiceClient
    from ledger.domain.recalculation import RetryPolicy
    from ledger.services.outbox_dispatcher import OutboxDispatcher

    timeout = settings.order_service_timeout_seconds
    client = OrderServiceClient(
        settings.order_service_url,
        settings.order_service_token,
        connect_timeout=min(timeout, 5.0),
        read_timeout=timeout,
    )
    policy = RetryPolicy(
        base_seconds=settings.recalc_backoff_seconds,
        max_delay_seconds=settings.recalc_max_backoff_seconds,
        max_attempts=settings.recalc_max_attempts,
    )
    return OutboxDispatcher(
        database_url, client, policy, poll_seconds=settings.recalc_poll_seconds
    ).start()


def _revoked_ids(store: EventStore) -> frozenset[str]:
    with store.datastore.get_connection() as conn:
        return revoked_ids(conn)
