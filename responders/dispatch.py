"""The reply dispatcher: exactly one public reply per send, even across crashes and instances.

Protocol for one reply:
1. Take it: a conditional UPDATE moves it `draft|failed -> sending` and bumps `attempts` (a fencing
   token). Only one worker, in one process or on one of several instances, wins.
2. Commit that, THEN call the platform. A crash after this point leaves the reply `sending`.
3. Record the outcome: `sent` with the platform id, or `failed` with a plain-words error; transient
   failures get `next_attempt_at` with exponential backoff (or the platform's `retry_at`).

Recovery: a reply left `sending` longer than `lease` (45 s: longer than the adapters' HTTP timeouts
of at most 5 s to connect plus 30 s to read) belonged to a worker that died. Before posting
again, the dispatcher asks the platform whether our reply is already there (`find_reply`: the X
conversation, the Facebook comment's replies); if so it is marked sent, never posted twice.

What the platforms answer decides the rest (`plain_error`): a `Duplicate` refusal (X 403 "duplicate
content", Graph 506) means the text is there already: the dispatcher looks for it (`find_reply`) and
settles the reply as sent when it is ours; when it cannot be found yet (X's search lags behind) and an
earlier attempt may have posted it, it looks again later (DUPLICATE_CHECKS times), else the agent is
told to reword it. `ContentRejected` (too long by the platform's count) goes back to the agent to
edit. Rate limits (15-minute, 24-hour, monthly caps) wait for their `retry_at` and do not use up
the reply's MAX_ATTEMPTS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from listener.platforms import display_name
from listener.platforms.base import (
    AuthFailed,
    ContentRejected,
    Duplicate,
    PlatformError,
    RateLimited,
    TargetGone,
    Transient,
    Unverifiable,
)
from models.domain import AuthorData, MentionData, ReplyState
from models.orm import Mention, Reply, utcnow
from responders import audit

log = logging.getLogger(__name__)


class ReplyPlatform(Protocol):
    def post_reply(self, mention: MentionData, text: str) -> str: ...

    def find_reply(self, mention: MentionData, text: str) -> str | None: ...


@dataclass(frozen=True)
class SendOutcome:
    reply_id: int
    state: str
    platform_reply_id: str | None = None
    error: str | None = None
    recovered: bool = False


def plain_error(exc: Exception) -> tuple[str, bool]:
    """A message for the agent, and whether retrying later can help."""
    if isinstance(exc, RateLimited):
        when = f"{exc.retry_at:%Y-%m-%d %H:%M}" if exc.scope != "rate limit" else f"{exc.retry_at:%H:%M}"
        return f"The platform is limiting us ({exc.scope}); openear retries at {when} UTC.", True
    if isinstance(exc, ContentRejected):
        return f"The platform refused this text: {exc} Edit the reply and send it again.", False
    if isinstance(exc, Duplicate):
        return ("The platform refuses to post the same text twice and our reply is not in the thread: "
                "reword the reply and send it again."), False
    if isinstance(exc, AuthFailed):
        return f"The platform rejected our credentials, so nothing was posted. An admin must fix them: {exc}", False
    if isinstance(exc, TargetGone):
        return "The post you answered no longer exists (deleted or hidden); the reply was not posted.", False
    if isinstance(exc, Transient):
        return f"The platform had a temporary problem ({exc}); openear retries automatically.", True
    if isinstance(exc, Unverifiable):
        return f"Not sent again: {exc}.", False
    return f"Unexpected error: {exc}", False


class Dispatcher:
    """Sends queued replies through the platform adapters. All dependencies come in here."""

    BACKOFF = timedelta(seconds=30)
    MAX_BACKOFF = timedelta(minutes=30)
    MAX_ATTEMPTS = 8
    DUPLICATE_CHECKS = 4  # attempts within which a Duplicate refusal is looked up again (search lag)
    DUPLICATE_WAIT = timedelta(seconds=45)  # longer than X's search indexing delay

    def __init__(
        self,
        sessions: sessionmaker[Session],
        platforms: Mapping[str, ReplyPlatform],
        *,
        clock: Callable[[], datetime] = utcnow,
        lease: timedelta = timedelta(seconds=45),
    ) -> None:
        self.sessions, self.platforms, self.clock, self.lease = sessions, platforms, clock, lease

    # ------------------------------------------------------------------ public

    def dispatch(self, reply_id: int) -> SendOutcome | None:
        """Send one reply now if it is due (draft, or failed and retryable). None: not ours to send."""
        now = self.clock()
        with self.sessions.begin() as session:
            attempt = session.execute(
                update(Reply)
                .where(Reply.id == reply_id, or_(
                    Reply.state == ReplyState.DRAFT.value,
                    and_(Reply.state == ReplyState.FAILED.value, Reply.retryable.is_(True)),
                ))
                .values(state=ReplyState.SENDING.value, attempts=Reply.attempts + 1, last_attempt_at=now,
                        next_attempt_at=None)
                .returning(Reply.attempts)
            ).scalar()
        if attempt is None:
            return None
        return self._send(reply_id, attempt, recover=False)

    def dispatch_due(self, limit: int = 50) -> list[SendOutcome]:
        """Every reply due now: drafts, retries whose time has come, and sends orphaned by a crash."""
        now = self.clock()
        with self.sessions() as session:
            due = session.scalars(
                select(Reply.id).where(or_(
                    Reply.state == ReplyState.DRAFT.value,
                    and_(Reply.state == ReplyState.FAILED.value, Reply.retryable.is_(True),
                         Reply.next_attempt_at <= now),
                )).order_by(Reply.id).limit(limit)
            ).all()
            orphaned = session.execute(
                select(Reply.id, Reply.attempts).where(
                    Reply.state == ReplyState.SENDING.value, Reply.last_attempt_at <= now - self.lease
                ).order_by(Reply.id).limit(limit)
            ).all()
        outcomes = [o for o in (self.recover(r.id, r.attempts) for r in orphaned) if o]
        outcomes += [o for o in (self.dispatch(reply_id) for reply_id in due) if o]
        return outcomes

    def recover(self, reply_id: int, seen_attempts: int) -> SendOutcome | None:
        """Take over a reply stuck in `sending` (its worker died) and finish it without a double post."""
        now = self.clock()
        with self.sessions.begin() as session:
            attempt = session.execute(
                update(Reply)
                .where(Reply.id == reply_id, Reply.state == ReplyState.SENDING.value,
                       Reply.attempts == seen_attempts)
                .values(attempts=Reply.attempts + 1, last_attempt_at=now)
                .returning(Reply.attempts)
            ).scalar()
        if attempt is None:
            return None  # another worker took it over first
        return self._send(reply_id, attempt, recover=True)

    # ------------------------------------------------------------------ steps

    def _send(self, reply_id: int, attempt: int, *, recover: bool) -> SendOutcome:
        with self.sessions() as session:
            reply = session.get(Reply, reply_id)
            mention = session.get(Mention, reply.mention_id) if reply and reply.mention_id else None
            if reply is None:
                raise LookupError(f"reply {reply_id} vanished")
            text, platform = reply.text, reply.platform
            target = mention_data(mention) if mention else None
        if target is None:
            return self._finish(reply_id, attempt, error=TargetGone("the mention was deleted"))
        adapter = self.platforms.get(platform)
        if adapter is None:
            return self._finish(reply_id, attempt, error=AuthFailed(f"{display_name(platform)} is not configured"))
        try:
            # Any earlier attempt may have reached the platform (a timeout after it accepted the
            # post, a crash): look before posting again.
            existing = adapter.find_reply(target, text) if recover or attempt > 1 else None
            if existing:
                log.info("reply %s was already posted as %s before a crash; not posting again", reply_id, existing)
                return self._finish(reply_id, attempt, platform_id=existing, recovered=True)
            platform_id = adapter.post_reply(target, text)
        except Duplicate as exc:
            return self._settle_duplicate(adapter, target, text, reply_id, attempt, exc, recover=recover)
        except PlatformError as exc:
            return self._finish(reply_id, attempt, error=exc)
        return self._finish(reply_id, attempt, platform_id=platform_id)

    def _settle_duplicate(self, adapter: ReplyPlatform, target: MentionData, text: str, reply_id: int,
                          attempt: int, refusal: Duplicate, *, recover: bool) -> SendOutcome:
        """The platform says the text is there already: ours (from an attempt that timed out), or a copy
        posted elsewhere. Look it up; if an earlier attempt may have posted it, look again later."""
        try:
            existing = adapter.find_reply(target, text)
        except PlatformError as exc:
            return self._finish(reply_id, attempt, error=exc)
        if existing:
            log.info("reply %s: the platform calls it a duplicate; it is ours, posted as %s", reply_id, existing)
            return self._finish(reply_id, attempt, platform_id=existing, recovered=True)
        if (recover or attempt > 1) and attempt < self.DUPLICATE_CHECKS:
            return self._finish(reply_id, attempt, error=refusal, look_again=True)
        return self._finish(reply_id, attempt, error=refusal)

    def _finish(self, reply_id: int, attempt: int, *, platform_id: str | None = None,
                error: Exception | None = None, recovered: bool = False, look_again: bool = False) -> SendOutcome:
        now = self.clock()
        with self.sessions.begin() as session:
            reply = session.get(Reply, reply_id, with_for_update=True)
            if reply is None or reply.attempts != attempt or reply.state != ReplyState.SENDING.value:
                # a recovery took this reply over while we were waiting on the platform
                log.warning("reply %s changed hands during the send; leaving it to attempt %s", reply_id,
                            reply.attempts if reply else None)
                return SendOutcome(reply_id, reply.state if reply else "gone")
            if error is None:
                reply.transition(ReplyState.SENT)
                reply.sent_at, reply.platform_reply_id, reply.error = now, platform_id, None
                audit.record(session, audit.REPLY_SENT, "reply", reply_id, user_id=reply.user_id, at=now,
                             detail={"platform_reply_id": platform_id, "recovered": recovered})
                return SendOutcome(reply_id, ReplyState.SENT.value, platform_id, recovered=recovered)
            message, retryable = plain_error(error)
            if look_again:
                message = ("The platform says this reply is already posted but it is not visible yet; "
                           "openear checks again shortly.")
                retryable = True
            if isinstance(error, RateLimited):
                # refused before anything was posted: not a try. `attempts` counts real tries only, so
                # waiting out limits uses up neither MAX_ATTEMPTS, the backoff nor DUPLICATE_CHECKS
                # (the fencing of this attempt is over: the reply leaves `sending` right here)
                reply.attempts -= 1
            retryable = retryable and (isinstance(error, RateLimited) or reply.attempts < self.MAX_ATTEMPTS)
            reply.transition(ReplyState.FAILED)
            reply.error, reply.retryable = message, retryable
            if retryable:
                backoff = min(self.BACKOFF * 2 ** (reply.attempts - 1), self.MAX_BACKOFF)
                if look_again:
                    backoff = max(backoff, self.DUPLICATE_WAIT)
                reply.next_attempt_at = error.retry_at if isinstance(error, RateLimited) else now + backoff
            audit.record(session, audit.REPLY_FAILED, "reply", reply_id, user_id=reply.user_id, at=now,
                         detail={"error": message, "retryable": retryable})
            log.warning("reply %s failed (attempt %s, %s): %s", reply_id, reply.attempts,
                        "will retry" if retryable else "final", message)
            return SendOutcome(reply_id, ReplyState.FAILED.value, error=message)


def mention_data(m: Mention) -> MentionData:
    """A stored mention as the adapters take it (without `raw`: adapters decide from stored fields)."""
    author = m.author
    return MentionData(
        platform=m.platform, external_id=m.external_id, text=m.text, created_at=m.created_at,
        author=AuthorData(m.platform, author.external_id, author.handle, author.display_name,
                          author.followers, author.profile_url),
        brand=m.brand, source=m.source, language=m.language, conversation_id=m.conversation_id,
        in_reply_to_id=m.in_reply_to_id, permalink=m.permalink, is_own=m.is_own, hidden=m.hidden,
        revision=m.revision_id, edited_at=m.edited_at,
    )
