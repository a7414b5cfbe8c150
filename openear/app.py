"""The composition root: builds every part from the config and hands dependencies in."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from models.config import Config
from models.db import check_schema, make_engine, session_factory


class OpenEar:
    """Wires storage, adapters, classifier and services for the CLI, the daemon and the web app."""

    def __init__(self, config: Config, *, engine: Engine | None = None) -> None:
        self.config = config
        self.engine = engine or make_engine(config.database.url)
        self.sessions: sessionmaker[Session] = session_factory(self.engine)

    def check_schema(self) -> None:
        check_schema(self.engine)
