"""The managers' daily digest: build (SQL aggregates), render (HTML + text + charts), deliver (SMTP), archive."""

from responders.digest.archive import DigestOutcome, send_due, send_due_digests
from responders.digest.build import DigestData, build_digest, day_bounds
from responders.digest.render import RenderedDigest, render_digest

__all__ = ["DigestData", "DigestOutcome", "RenderedDigest", "build_digest", "day_bounds", "render_digest",
           "send_due", "send_due_digests"]
