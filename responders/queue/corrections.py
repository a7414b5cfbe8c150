"""A person corrects the classifier: the label is changed and the correction kept for retraining."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from models.domain import SentimentLabel
from models.orm import Mention, SentimentCorrection, User
from responders import audit
from responders.errors import Invalid
from responders.queue.items import get_mention


def correct_sentiment(session: Session, mention_id: int, user: User, label: str, *, now: datetime) -> Mention:
    """A human sets the sentiment label; the correction is kept for retraining."""
    try:
        checked = SentimentLabel(label)
    except ValueError:
        raise Invalid("the label must be negative, neutral or positive") from None
    mention = get_mention(session, mention_id)
    if mention.sentiment_label == checked.value:
        return mention
    session.add(SentimentCorrection(mention_id=mention.id, user_id=user.id, original_label=mention.sentiment_label,
                                    corrected_label=checked.value, created_at=now))
    audit.record(session, audit.CORRECT, "mention", mention.id, user_id=user.id, at=now,
                 detail={"from": mention.sentiment_label, "to": checked.value})
    mention.sentiment_label = checked.value
    return mention

