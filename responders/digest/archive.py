"""The digest archive (table `digests`, unique per brand and day) and sending each digest exactly once.

Build, render and store happen once per brand-day (a concurrent second builder loses on the unique
constraint and uses the stored row). Sending:

1. one transaction starts with `UPDATE digests SET send_attempts = send_attempts + 1 WHERE id = ? AND
   sent_at IS NULL`: it takes the row lock (PostgreSQL) or the write lock (SQLite), so a concurrent
   sender (the daily job and the hourly catch-up) waits and then finds the digest sent;
2. the email is handed to SMTP in that transaction;
3. success sets sent_at (and the Message-ID) in the same transaction; failure records last_error, and
   the next call retries (up to MAX_SEND_ATTEMPTS).

A crash after the SMTP server accepted the email but before the commit rolls everything back, so
the digest is sent again later. The Message-ID is derived from brand and day
(`deliver.message_id`), so the duplicate carries the same id and mail clients and archives can
deduplicate it. That is the one case in which recipients may see the same digest twice.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from models.config import Config, SmtpConfig
from models.orm import Digest
from models.vectors import Embedder
from responders.digest.build import build_digest
from responders.digest.deliver import deliver
from responders.digest.render import RenderedDigest, digest_trend, render_digest

log = logging.getLogger(__name__)

MAX_SEND_ATTEMPTS = 24
RETRY_DAYS = 7
Transport = Callable[..., str]  # (rendered, smtp, recipients, *, brand, day) -> Message-ID


@dataclass(frozen=True)
class DigestOutcome:
    """What happened to one brand-day: status is sent, already sent, failed, gave up or not configured."""

    brand: str
    day: date
    digest_id: int
    created: bool
    status: str
    message_id: str | None = None
    error: str | None = None


def stored_rendering(row: Digest) -> RenderedDigest:
    """The archived email (subject, bodies, images) of a digest row."""
    images = {cid: base64.b64decode(b64) for cid, b64 in (row.data.get("images") or {}).items()}
    return RenderedDigest(str(row.data.get("subject", "")), row.html or "", row.text or "", images)


def archive_digest(sessions: sessionmaker[Session], config: Config, brand: str, day: date,
                   now: datetime, *, embedder: Embedder | None = None) -> tuple[int, bool]:
    """The archived digest's id for brand and day, building, rendering and storing it once; (id, created).
    `embedder`: the sentence vectors of the topic groups (build_digest)."""
    with sessions() as session:
        existing = session.scalar(select(Digest.id).where(Digest.brand == brand, Digest.day == day))
        if existing is not None:
            return existing, False
        data = build_digest(session, config, brand, day, now=now, embedder=embedder)
        trend = digest_trend(session, data)
    rendered = render_digest(data, trend)
    payload = {"digest": asdict(data), "subject": rendered.subject,
               "images": {cid: base64.b64encode(png).decode() for cid, png in rendered.images.items()}}
    try:
        with sessions.begin() as session:
            row = Digest(brand=brand, day=day, created_at=now, data=payload, html=rendered.html, text=rendered.text)
            session.add(row)
            session.flush()
            return row.id, True
    except IntegrityError:  # built concurrently by another job: use theirs
        with sessions() as session:
            found = session.scalar(select(Digest.id).where(Digest.brand == brand, Digest.day == day))
            if found is None:
                raise
            return found, False


def send_archived(sessions: sessionmaker[Session], config: Config, digest_id: int, now: datetime, *,
                  transport: Transport = deliver, created: bool = False) -> DigestOutcome:
    """Send an archived digest unless it was sent already; failures are recorded for a later retry."""
    smtp: SmtpConfig | None = config.digest.smtp
    recipients = list(config.digest.recipients)
    with sessions.begin() as session:
        claimed = cast(CursorResult[Any], session.execute(
            update(Digest).where(Digest.id == digest_id, Digest.sent_at.is_(None),
                                 Digest.send_attempts < MAX_SEND_ATTEMPTS)
            .values(send_attempts=Digest.send_attempts + 1).execution_options(synchronize_session=False)
        )).rowcount if smtp and recipients else 0
        row = session.get(Digest, digest_id)
        if row is None:
            raise LookupError(f"no digest {digest_id}")
        session.refresh(row)
        brand, day = row.brand, row.day
        if not claimed:
            status = ("not configured" if not (smtp and recipients) else "already sent" if row.sent_at
                      else "gave up")
            return DigestOutcome(brand, day, digest_id, created, status, row.data.get("message_id"), row.last_error)
        assert smtp is not None
        try:
            msg_id = transport(stored_rendering(row), smtp, recipients, brand=brand, day=day.isoformat())
        except Exception as exc:  # recorded, retried by the next call
            row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            log.warning("digest %s %s: sending failed (attempt %s): %s", brand, day, row.send_attempts,
                        row.last_error)
            return DigestOutcome(brand, day, digest_id, created, "failed", error=row.last_error)
        row.sent_at, row.last_error = now, None
        row.data = {**row.data, "message_id": msg_id, "recipients": recipients}
        log.info("digest %s %s sent to %d recipients as %s", brand, day, len(recipients), msg_id)
        return DigestOutcome(brand, day, digest_id, created, "sent", msg_id)


def send_due(config: Config, sessions: sessionmaker[Session], brand: str, day: date, now: datetime, *,
             send: bool = True, transport: Transport = deliver, embedder: Embedder | None = None) -> DigestOutcome:
    """Make sure the digest of brand and day is archived and (if `send`) sent once."""
    digest_id, created = archive_digest(sessions, config, brand, day, now, embedder=embedder)
    if not send:
        return DigestOutcome(brand, day, digest_id, created, "archived")
    return send_archived(sessions, config, digest_id, now, transport=transport, created=created)


def due_day(config: Config, brand: str, now: datetime) -> date:
    """The brand's latest local day whose digest is due: the day before the last digest time that passed."""
    sched_tz = ZoneInfo(config.schedule.timezone)
    hour, minute = (int(part) for part in config.schedule.digest_time.split(":"))
    local = now.astimezone(sched_tz)
    run_date = local.date() if local.time() >= time(hour, minute) else local.date() - timedelta(days=1)
    last_run = datetime.combine(run_date, time(hour, minute), tzinfo=sched_tz).astimezone(UTC)
    return last_run.astimezone(ZoneInfo(config.brand(brand).timezone)).date() - timedelta(days=1)


def send_due_digests(config: Config, sessions: sessionmaker[Session], now: datetime, *,
                     transport: Transport = deliver, embedder: Embedder | None = None) -> list[DigestOutcome]:
    """For every brand: archive and send the latest due digest; retry unsent ones of the last week.

    Idempotent: safe to call from a daily job and an hourly catch-up job at the same time.
    """
    outcomes: list[DigestOutcome] = []
    for brand in config.brands:
        day = due_day(config, brand.name, now)
        try:
            outcomes.append(send_due(config, sessions, brand.name, day, now, transport=transport, embedder=embedder))
        except Exception:  # one brand's failure must not stop the others
            log.exception("digest %s %s could not be built", brand.name, day)
        with sessions() as session:
            retry = session.scalars(
                select(Digest.id).where(Digest.brand == brand.name, Digest.sent_at.is_(None), Digest.day < day,
                                        Digest.day >= day - timedelta(days=RETRY_DAYS),
                                        Digest.send_attempts < MAX_SEND_ATTEMPTS).order_by(Digest.day)
            ).all()
        outcomes += [send_archived(sessions, config, digest_id, now, transport=transport) for digest_id in retry]
    return outcomes
