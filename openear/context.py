"""What every CLI command shares: the config path, and lazily the config and the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from models.config import Config
from models.config_loader import load_config
from models.errors import OpenEarError

if TYPE_CHECKING:
    from openear.app import OpenEar


class UsageError(OpenEarError):
    """A command line that cannot work as given; the CLI prints the message without a traceback."""


@dataclass
class CliContext:
    config_path: Path
    _config: Config | None = field(default=None, repr=False)
    _app: OpenEar | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def app(self) -> OpenEar:
        """The wired application (schema checked)."""
        if self._app is None:
            from openear.app import OpenEar

            self._app = OpenEar(self.config)
            self._app.check_schema()
        return self._app
