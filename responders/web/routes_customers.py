"""Routes for customer memory (issue: customer memory and GDPR): filled in by that issue's work."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
