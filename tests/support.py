"""Helpers shared by tests (importable as `tests.support`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


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
