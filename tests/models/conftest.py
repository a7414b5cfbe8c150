"""Shared fixtures for the sentiment/encoder tests: one from-scratch build of the default encoder."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from models.sentiment import encoder_build


@pytest.fixture(scope="session")
def encoder_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the default encoder, built from scratch from the pip packages (~5-10 s)."""
    try:
        files = encoder_build.source_files()
    except encoder_build.EncoderBuildError as exc:  # pragma: no cover - depends on the environment
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("openear-data")
    start = time.perf_counter()
    encoder_build.build_encoder(encoder_build.encoder_dir(root), files)
    print(f"encoder built from scratch in {time.perf_counter() - start:.1f}s")
    return root


@pytest.fixture()
def data_root(encoder_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """OPENEAR_DATA_DIR pointed at the session's built encoder."""
    monkeypatch.setenv("OPENEAR_DATA_DIR", str(encoder_root))
    return encoder_root
