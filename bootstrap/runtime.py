"""Everything a serving process holds: settings, database, store, the writer, workers.

Built once per process (the API's lifespan; tests and benches start one directly) so
that HTTP handlers stay thin: they validate, call a use case with what the runtime
holds, and shape the answer. `Runtime.start` builds every part first and the Runtime
last, so a Runtime is complete from the start: nothing is filled in afterwards.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass

from bootstrap.opened import opened
from ledger.adapters import keys, outbox_store
from ledger.adapters.archive_store import RetentionCutoff
from ledger.adapters.client_store import revoked_ids
from ledger.adapters.database import Database
from ledger.adapters.event_store import EventStore
from ledger.adapters.order_service import OrderServiceClient
from ledger.adapters.replica import Connect, ReplicaReads
from ledger.config import Settings
from ledger.domain.packing import TokenFingerprints
from ledger.domain.recalculation import RetryPolicy
from ledger.services import tokens
from ledger.services.changes import CommitBell
from ledger.services.group_commit import GroupCommitter
from ledger.services.outbox_dispatcher import OutboxDispatcher
from ledger.services.partition_keeper import PartitionKeeper
from ledger.services.recalculation import resume_jobs
from projections.reader import ViewReader
from projections.runner import ProjectionRunner
from projections.workers import start_projection_workers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    database: Database
    store: EventStore
    committer: GroupCommitter
    fingerprints: TokenFingerprints
    # Rung after every commit of facts: the change feed's long-polls and streams wait on it.
    bell: CommitBell
    # The latest archive's cut-off and first retained position (a scan older than the
    # cut-off is refused; a read that would need archived facts says so).
    retention: RetentionCutoff
    # The read side: views read once they have the tenant's newest event (read-your-writes).
    views: ViewReader
    # The reads that may lag the primary (PICKPACK_DATABASE_REPLICA_URL: GET /events,
    # history, exports), the views as they read them, and the change feed's catch-up
    # (None without a replica). `replica` counts where they went, for /metrics.
    lagging_reads: Connect
    lagging_views: ViewReader
    catch_up: Connect | None
    replica: ReplicaReads | None
    # POST /oauth/token's use case and the revoked clients the API's verifier consults
    # (ledger/services/tokens.py); api.app builds the verifier. `signer` is None when
    # only an identity provider is trusted (PICKPACK_JWKS_URL): then nothing is signed here.
    token_service: tokens.TokenService
    signer: tokens.Signer | None
    revocations: tokens.RevocationList
    # The projection runner, the outbox dispatcher and the partition keeper, in start order
    # (stopped in reverse).
    workers: list[ProjectionRunner | OutboxDispatcher | PartitionKeeper]
    # Closes the store and stops a database `start` provisioned itself.
    _resources: ExitStack

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
        resources = ExitStack()
        try:
            parts = resources.enter_context(opened(settings, database))
            store = parts.store
            replica = parts.replica  # its pool connects in the background
            store.on_recorded.append(outbox_store.on_recorded)  # finish queues atomically
            fingerprints = TokenFingerprints(keys.fingerprint_key(store))
            if run_workers:
                resumed = resume_jobs(store)  # jobs a dead process left half-queued
                if resumed:
                    log.info("resumed %d interrupted recalculation job(s)", resumed)
            bell = CommitBell()
            committer = GroupCommitter(store, write_timeout=settings.write_timeout_seconds)
            committer.start()
            resources.callback(committer.stop)
            committer.on_commit.append(bell.ring)
            store.on_committed.append(bell.ring)
            workers = (
                start_workers(settings, parts.database, committer, bell) if run_workers else []
            )
            retention = RetentionCutoff(store.connection).start()
            resources.callback(retention.stop)
        except BaseException:
            resources.close()
            raise
        return cls(
            settings=settings,
            database=parts.database,
            store=store,
            committer=committer,
            fingerprints=fingerprints,
            bell=bell,
            retention=retention,
            views=ViewReader(store.connection),
            lagging_reads=parts.lagging_reads,
            lagging_views=ViewReader(parts.lagging_reads),
            catch_up=parts.catch_up,
            replica=replica,
            token_service=tokens.TokenService(
                connect=store.connection,
                signer=signer,
                lifetime=settings.token_lifetime_seconds,
                issuer=tokens.own_issuer(settings),
                audience=tokens.own_audience(settings),
            ),
            signer=signer,
            revocations=tokens.RevocationList(
                lambda: _revoked_ids(store), settings.revocation_cache_seconds
            ),
            workers=workers,
            _resources=resources,
        )

    def stop(self) -> None:
        """Stop the workers (newest first), then the writer, then close the store."""
        for worker in reversed(self.workers):
            worker.stop()
        self._resources.close()


def start_workers(
    settings: Settings, database: Database, committer: GroupCommitter, bell: CommitBell
) -> list[ProjectionRunner | OutboxDispatcher | PartitionKeeper]:
    """Projection and outbox workers that run inside `serve`, wired to the writer."""
    workers: list[ProjectionRunner | OutboxDispatcher | PartitionKeeper] = []
    for runner in start_projection_workers(database.url):
        # This process's own appends wake its runner directly; NOTIFY (sent at most
        # every few milliseconds) is for the other processes' runners.
        committer.on_commit.append(runner.wake.set)
        # Other processes' appends reach this one through the runner's LISTEN.
        runner.on_notify.append(bell.ring)
        workers.append(runner)
    dispatcher = start_outbox_dispatcher(settings, database.url)
    if dispatcher is not None:
        workers.append(dispatcher)
    workers.append(PartitionKeeper(database.url).start())
    return workers


def start_outbox_dispatcher(settings: Settings, database_url: str) -> OutboxDispatcher | None:
    """The recalculation dispatcher, or None: without an Order Service URL rows wait PENDING."""
    if not settings.order_service_url:
        log.info("PICKPACK_ORDER_SERVICE_URL is not set: recalculations stay queued")
        return None
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
    with store.connection() as conn:
        return revoked_ids(conn)
