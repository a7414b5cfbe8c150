"""Shared fixtures for the sentiment/encoder tests (the encoder build itself is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def data_root(encoder_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """OPENEAR_DATA_DIR pointed at the session's built encoder."""
    monkeypatch.setenv("OPENEAR_DATA_DIR", str(encoder_root))
    return encoder_root
