"""The sentiment package's errors: the `ClassifierError` branch of openear's exception tree."""

from __future__ import annotations

from models.errors import OpenEarError


class ClassifierError(OpenEarError):
    """The sentiment model cannot be built or loaded; str() says what to install, fix or pass instead."""


class EncoderBuildError(ClassifierError):
    """The embedded encoder cannot be built (missing or unexpected source files)."""


class UnmappableLabels(ClassifierError, ValueError):
    """A model's labels cannot be mapped onto negative/neutral/positive (also a ValueError, as before)."""
