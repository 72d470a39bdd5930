"""The scheduler's jobs, in dependency order, with the settings that space them."""

from collections.abc import Callable
from dataclasses import dataclass

from db.types import EventSource
from services.events.stream_health import configured
from services.settings import Settings
from services.sync.email_sender import deliver_emails
from services.sync.event_apply import APPLY_JOB, CLEANUP_JOB, apply_events, cleanup_events
from services.sync.member_import import sync_memberships
from services.sync.net import Net
from services.sync.otp import cleanup_codes
from services.sync.outbox_delivery import deliver_outbox
from services.sync.role_import import sync_roles
from services.sync.runs import JobBody
from services.sync.unverified import expire_unverified
from services.sync.user_import import (
    FULL_JOB,
    INCREMENTAL_JOB,
    sync_users_full,
    sync_users_incremental,
)


@dataclass(frozen=True)
class Job:
    name: str
    body: JobBody
    interval_s: Callable[[Settings], float]
    full_sync: bool = False  # skipped by --skip-full-sync
    email: bool = False  # the only jobs run by --email-only
    immediate: bool = True  # part of `--immediate`
    quiet: bool = False  # frequent polling: idle runs are not recorded
    # Needs the syncs before it on a fresh start (the catalog, the users). False: started
    # at once, beside the first pass (email waits for no user sync after a restart).
    after_syncs: bool = True
    # A stream that stands in for this poll while healthy (services/sync/net.py).
    net: Net | None = None
    enabled: Callable[[Settings], bool] = lambda _settings: True


def _streaming(settings: Settings) -> bool:
    return configured(settings, EventSource.EVENT_STREAM) or configured(
        settings, EventSource.LOG_STREAM
    )


JOBS: tuple[Job, ...] = (
    Job("sync.roles", sync_roles, lambda s: s.sync_roles_interval_s),
    Job(
        FULL_JOB,
        sync_users_full,
        lambda s: s.sync_users_full_interval_s,
        full_sync=True,
        net=Net(EventSource.EVENT_STREAM, lambda s: s.events_net_full_interval_s, (FULL_JOB,)),
    ),
    # After a full sync the incremental one has nothing to add, so --immediate leaves it out.
    Job(
        INCREMENTAL_JOB,
        sync_users_incremental,
        lambda s: s.sync_users_incremental_interval_s,
        immediate=False,
        net=Net(
            EventSource.EVENT_STREAM,
            lambda s: s.events_net_incremental_interval_s,
            (FULL_JOB, INCREMENTAL_JOB),
        ),
    ),
    Job(
        "sync.memberships",
        sync_memberships,
        lambda s: s.sync_memberships_interval_s,
        full_sync=True,
        net=Net(
            EventSource.LOG_STREAM,
            lambda s: s.events_net_memberships_interval_s,
            ("sync.memberships",),
        ),
    ),
    Job("sync.outbox", deliver_outbox, lambda s: s.sync_outbox_interval_s, after_syncs=False),
    Job(
        "email.deliver",
        deliver_emails,
        lambda s: s.email_interval_s,
        email=True,
        quiet=True,
        after_syncs=False,
    ),
    Job(
        "otp.cleanup",
        cleanup_codes,
        lambda s: s.sync_otp_cleanup_interval_s,
        email=True,
        after_syncs=False,
    ),
    Job(
        "users.expire_unverified",
        expire_unverified,
        lambda s: s.sync_expire_unverified_interval_s,
        full_sync=True,
    ),
    # Only with a stream configured (README "Event and Log Streams").
    Job(
        APPLY_JOB,
        apply_events,
        lambda s: s.events_apply_interval_s,
        quiet=True,
        after_syncs=False,
        enabled=_streaming,
    ),
    Job(CLEANUP_JOB, cleanup_events, lambda _s: 3600, after_syncs=False, enabled=_streaming),
)
JOBS_BY_NAME = {job.name: job for job in JOBS}


def select_jobs(
    *,
    only: str | None = None,
    skip_full_sync: bool = False,
    email_only: bool = False,
    immediate: bool = False,
) -> list[Job]:
    if only is not None:
        if only not in JOBS_BY_NAME:
            raise KeyError(f"unknown job {only!r}; jobs: {', '.join(JOBS_BY_NAME)}")
        return [JOBS_BY_NAME[only]]
    chosen = [job for job in JOBS if not (immediate and not job.immediate)]
    if email_only:
        return [job for job in chosen if job.email]
    if skip_full_sync:
        return [job for job in chosen if not job.full_sync]
    return chosen
