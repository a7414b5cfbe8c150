"""The audit log: who did what, when. Every queue action, send, login, user and customer change writes one
event, with an action from the one list below (`record` refuses any other)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.orm import AuditEvent, User

# The one list of audit actions (AuditEvent.action): every event written anywhere uses one of these,
# and the audit page filters by each. action -> what it means, for the filter's labels.
LOGIN, LOGIN_FAILED, LOGOUT = "login", "login_failed", "logout"
LOGIN_LOCKED, SESSIONS_END = "login_locked", "sessions_ended"
USER_CREATE, USER_UPDATE = "user_create", "user_update"
CLAIM, RELEASE, REASSIGN, EXPIRE = "claim", "release", "reassign", "claim_expired"
REPLY, RETRY, DISMISS = "reply", "reply_retry", "dismiss"
REPLY_SENT, REPLY_FAILED, ANSWERED_ON_PLATFORM = "reply_sent", "reply_failed", "answered_on_platform"
REOPENED = "reopened"
CORRECT, NOTE, TAG, UNTAG = "sentiment_correction", "note", "tag", "untag"
SAVED_REPLY_CREATE, SAVED_REPLY_UPDATE = "saved_reply_create", "saved_reply_update"
SAVED_REPLY_DELETE = "saved_reply_delete"
LINK_CONFIRM, LINK_REJECT, LINK_AUTO = "link_confirm", "link_reject", "link_auto"
LINK, UNLINK, MERGE = "customer_link", "customer_unlink", "customer_merge"
CUSTOMER_NOTE, CUSTOMER_TAGS = "customer_note", "customer_tags"
EXPORT, ERASE, RETENTION = "customer_export", "customer_erase", "retention"
CLASSIFIER_SWITCH, CLASSIFIER_REFUSED = "classifier_switch", "classifier_refused"
CLASSIFIER_ROLLBACK = "classifier_rollback"
HIDE = "hide"

ACTIONS: dict[str, str] = {
    LOGIN: "signed in", LOGIN_FAILED: "sign-in failed", LOGIN_LOCKED: "sign-in locked", LOGOUT: "signed out",
    SESSIONS_END: "sessions ended", USER_CREATE: "user created", USER_UPDATE: "user changed",
    CLAIM: "claimed", RELEASE: "released", REASSIGN: "reassigned", EXPIRE: "claim expired",
    REPLY: "reply written", RETRY: "reply retried", REPLY_SENT: "reply sent", REPLY_FAILED: "reply failed",
    ANSWERED_ON_PLATFORM: "answered on the platform", DISMISS: "dismissed",
    REOPENED: "reopened: the customer wrote again",
    CORRECT: "sentiment corrected", NOTE: "note on a mention", TAG: "tagged", UNTAG: "tag removed",
    SAVED_REPLY_CREATE: "saved reply created", SAVED_REPLY_UPDATE: "saved reply changed",
    SAVED_REPLY_DELETE: "saved reply deleted",
    LINK_CONFIRM: "link confirmed", LINK_REJECT: "link rejected", LINK_AUTO: "linked automatically",
    LINK: "identity linked", UNLINK: "identity unlinked", MERGE: "customers merged",
    CUSTOMER_NOTE: "note on a customer", CUSTOMER_TAGS: "customer tags set",
    EXPORT: "customer data exported", ERASE: "customer erased", RETENTION: "retention applied",
    CLASSIFIER_SWITCH: "classifier retrained and switched", CLASSIFIER_REFUSED: "retrained classifier refused",
    CLASSIFIER_ROLLBACK: "classifier rolled back", HIDE: "hidden on the platform",
}


def record(
    session: Session,
    action: str,
    object_type: str,
    object_id: int | str | None,
    *,
    user_id: int | None,
    at: datetime,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one audit event to the session (committed with the change it describes).

    `action` must be one of ACTIONS: an unlisted action is a bug, refused before it is written."""
    if action not in ACTIONS:
        raise ValueError(f"audit action {action!r} is not in responders.audit.ACTIONS")
    event = AuditEvent(
        at=at,
        user_id=user_id,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        detail=detail or {},
    )
    session.add(event)
    return event


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    username: str | None
    action: str
    object_type: str
    object_id: str | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    page: int
    has_next: bool


def list_events(
    session: Session,
    *,
    action: str | None = None,
    user_id: int | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    page: int = 1,
    per_page: int = 100,
) -> AuditPage:
    """Newest events first, optionally filtered; one extra row tells whether a next page exists."""
    page = max(page, 1)
    query = select(AuditEvent, User.username).outerjoin(User, User.id == AuditEvent.user_id)
    if action:
        query = query.where(AuditEvent.action == action)
    if user_id is not None:
        query = query.where(AuditEvent.user_id == user_id)
    if object_type:
        query = query.where(AuditEvent.object_type == object_type)
    if object_id:
        query = query.where(AuditEvent.object_id == object_id)
    query = query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).offset((page - 1) * per_page)
    result = session.execute(query.limit(per_page + 1)).all()
    rows = [
        AuditRow(e.id, e.at, username, e.action, e.object_type, e.object_id, dict(e.detail or {}))
        for e, username in result[:per_page]
    ]
    return AuditPage(rows=rows, page=page, has_next=len(result) > per_page)


def last_event(
    session: Session, actions: tuple[str, ...], object_type: str, object_id: int | str
) -> AuditEvent | None:
    """The most recent event of these kinds on one object (e.g. when the current claim began)."""
    return session.scalar(
        select(AuditEvent)
        .where(AuditEvent.object_type == object_type, AuditEvent.object_id == str(object_id),
               AuditEvent.action.in_(actions))
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(1)
    )


def count_events(session: Session, action: str) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)) or 0)
