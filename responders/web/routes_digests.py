"""Routes for the daily digest archive (issue: daily digest): filled in by that issue's work."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
