"""Helpers shared by tests (importable as `tests.support`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from listener.platforms.base import FetchResult, Source
from listener.poller import ClassifierLike, Poller
from models.config import RankingConfig
from models.domain import AuthorData, MentionData, Platform
from responders.queue.intake import Intake


def make_poller(sessions: sessionmaker[Session], classifier: ClassifierLike, *,
                clock: Callable[[], datetime] | None = None, ranking: RankingConfig | None = None) -> Poller:
    """A poller wired as the composition root wires it: the review queue's intake behind it."""
    kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
    return Poller(sessions, classifier, intake=Intake(sessions, ranking=ranking, **kwargs), **kwargs)


class FakeClock:
    """A clock tests move by hand; never sleeps. Call it for an aware UTC datetime."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now_value = start or datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now_value

    def advance(self, **kwargs: float) -> datetime:
        self.now_value += timedelta(**kwargs)
        return self.now_value

    def timestamp(self) -> float:
        """Epoch seconds, for emulators that take a `time.time`-like clock."""
        return self.now_value.timestamp()


# --------------------------------------------------------------------------- a scripted source

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
SOURCE = Source("x:acme:search:0", "x", "Acme", "search", "acme")


def post(n: int, text: str = "my order never arrived, please help", author: str = "u1", **kw: object) -> MentionData:
    return MentionData(
        platform="x", external_id=str(1000 + n), text=text, created_at=T0 + timedelta(minutes=n),
        author=AuthorData("x", author, handle=f"h{author}", followers=100), brand="Acme",
        source=SOURCE.name, conversation_id=str(1000 + n), **kw,  # type: ignore[arg-type]
    )


@dataclass
class ScriptedAdapter:
    """Returns the scripted batches one per fetch; records the cursors it was asked with."""

    batches: list[list[MentionData] | FetchResult | Exception] = field(default_factory=list)
    seen_cursors: list[str | None] = field(default_factory=list)
    platform: Platform = "x"

    def sources(self) -> list[Source]:
        return [SOURCE]

    def preflight(self) -> None:
        return None

    def fetch(self, source: Source, cursor: str | None) -> FetchResult:
        self.seen_cursors.append(cursor)
        batch = self.batches.pop(0)
        if isinstance(batch, Exception):
            raise batch
        if isinstance(batch, FetchResult):
            return batch
        newest = max((m.external_id for m in batch), key=int, default=None)
        return FetchResult(batch, newest or cursor)

    def post_reply(self, mention: MentionData, text: str) -> str:
        raise NotImplementedError

    def find_reply(self, mention: MentionData, text: str) -> str | None:
        return None


@dataclass
class Result:
    label: str
    negative: float
    neutral: float
    positive: float
    complaint: float


class CountingClassifier:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def classify(self, texts: list[str]) -> list[Result]:
        self.calls.append(texts)
        return [Result("negative", 0.8, 0.1, 0.1, 0.9) if "never" in t else Result("positive", 0.05, 0.15, 0.8, 0.1)
                for t in texts]
