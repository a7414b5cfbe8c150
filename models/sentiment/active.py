"""Which trained default model is active: the shipped one or a gated retrain on this machine.

`<data dir>/classifiers/active.json` names the active version and the one before it;
models/sentiment/versions.py trains, gates, switches and rolls back. Kept apart so that loading the
classifier needs none of the training code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.sentiment.encoder_build import data_dir
from models.sentiment.errors import ClassifierError
from models.sentiment.head import HEAD_PATH

SHIPPED = "shipped"


def versions_dir() -> Path:
    return data_dir() / "classifiers"


def _active_file() -> Path:
    return versions_dir() / "active.json"


def read_active() -> dict[str, Any]:
    """{"active": version, "previous": version | None, "history": [...]}."""
    path = _active_file()
    if not path.is_file():
        return {"active": SHIPPED, "previous": None, "history": []}
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ClassifierError(f"{path} is unreadable ({exc}); delete it to use the shipped model") from exc


def head_path_of(version: str) -> Path:
    if version == SHIPPED:
        return HEAD_PATH
    return versions_dir() / version / HEAD_PATH.name


def active_head_path() -> Path:
    """The head file `model: default` loads: the active retrained version, or the shipped one."""
    version = str(read_active()["active"])
    path = head_path_of(version)
    if not path.is_file():
        raise ClassifierError(f"active classifier version {version!r} is missing ({path}); run "
                              "`openear classifier rollback` or delete " + str(_active_file()))
    return path


def write_active(state: dict[str, Any]) -> None:
    path = _active_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
