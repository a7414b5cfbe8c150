"""Loading config.yaml: environment references, strict validation, problems with file, key, line and hint.

Values may reference environment variables as `${NAME}` (required) or `${NAME:-default}`; secrets
must come that way, and every secret loaded is registered with models.secrets so that logs and
error messages never show it. The schema itself is models/config.py.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from models.config import Config, DatabaseConfig
from models.errors import OpenEarError
from models.secrets import register_secret

DEFAULT_CONFIG_PATH = "config.yaml"
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    line: int | None = None
    hint: str | None = None


class ConfigError(OpenEarError):
    """Configuration that openear refuses to start with; str() is the message for the user."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source, self.problems = source, problems
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.problems)
        lines = [f"{self.source}: {count} problem{'s' if count != 1 else ''} in the configuration"]
        for p in self.problems:
            where = f"{self.source}:{p.line}" if p.line else self.source
            text = f"  {where}: {p.path or '(top level)'}: {p.message}"
            if p.hint:
                text += f"\n      hint: {p.hint}"
            lines.append(text)
        return "\n".join(lines)


Path_ = tuple[str | int, ...]


def _line_index(node: yaml.Node, path: Path_ = (), index: dict[Path_, int] | None = None) -> dict[Path_, int]:
    """Map every key path of a composed YAML document to its 1-based line."""
    index = {} if index is None else index
    index.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*path, str(key_node.value))
            index[key] = key_node.start_mark.line + 1
            _line_index(value_node, key, index)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*path, i), index)
    return index


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _substitute_env(data: Any, path: Path_, problems: list[Problem], lines: dict[Path_, int]) -> Any:
    if isinstance(data, dict):
        return {k: _substitute_env(v, (*path, str(k)), problems, lines) for k, v in data.items()}
    if isinstance(data, list):
        return [_substitute_env(v, (*path, i), problems, lines) for i, v in enumerate(data)]
    if not isinstance(data, str) or "${" not in data:
        return data

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name)
        if value is None or value == "":
            if default is not None:
                return default
            problems.append(
                Problem(
                    _dotted(path),
                    f"environment variable {name} is not set",
                    lines.get(path),
                    f"export {name}=... before starting openear (secrets never go into config.yaml)",
                )
            )
            return ""
        return value

    return ENV_REF.sub(replace, data)


def _model_at(path: Path_) -> type[BaseModel] | None:
    """The config section class found at `path`, for suggesting key names."""
    model: Any = Config
    for part in path:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return None
        model = _section_type(field.annotation)
        if model is None:
            return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _section_type(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _section_type(arg)
        if found is not None:
            return found
    return None


SCALAR_TEXT = r"-?\d+(\.\d+)?|true|false|yes|no"
_TYPE_NAMES = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
}


def _problem_from_error(err: Any, lines: dict[Path_, int]) -> Problem:
    loc: Path_ = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    kind, value = err["type"], err.get("input")
    line = lines.get(loc) or lines.get(loc[:-1])
    path = _dotted(loc)
    if kind == "extra_forbidden":
        section = _model_at(loc[:-1])
        options = list(section.model_fields) if section else []
        close = difflib.get_close_matches(str(loc[-1]), options, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else None
        if options:
            hint = (hint + " " if hint else "") + f"valid keys here: {', '.join(options)}"
        return Problem(path, "unknown key", line, hint)
    if kind == "missing":
        return Problem(path, "required key is missing", line, None)
    if kind in _TYPE_NAMES:
        expected = _TYPE_NAMES[kind]
        hint = None
        looks_scalar = isinstance(value, str) and re.fullmatch(SCALAR_TEXT, value.strip().lower())
        if looks_scalar and kind in ("int_type", "float_type", "bool_type"):
            hint = f"{value!r} is quoted, so YAML reads it as a string: write {value.strip()} without quotes"
        got = type(value).__name__ if value is not None else "nothing"
        return Problem(path, f"expected {expected}, got {got} {value!r}"[:200], line, hint)
    message = err["msg"].removeprefix("Value error, ")
    return Problem(path, message, line, None)


def parse_config(text: str, source: str = DEFAULT_CONFIG_PATH) -> Config:
    """Validate config text; raise ConfigError listing every problem found."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(source, [Problem("", f"invalid YAML: {exc.problem or exc}", line,
                                           "check indentation and quoting around that line")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, [Problem("", f"invalid YAML: {exc}")]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [Problem("", "the file must be a mapping of sections (brands:, web:, ...)", 1)])
    lines = _line_index(node) if node is not None else {}
    problems: list[Problem] = []
    data = _substitute_env(data, (), problems, lines)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        env_paths = {p.path for p in problems}
        problems += [p for p in (_problem_from_error(e, lines) for e in exc.errors()) if p.path not in env_paths]
    if problems:
        problems.sort(key=lambda p: (p.line or 0, p.path))
        raise ConfigError(source, problems)
    _register_secrets(config)
    return config


def load_config(path: str | os.PathLike[str] = DEFAULT_CONFIG_PATH) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), [Problem("", "file not found", None,
                                              "create one with `openear init`, or pass --config PATH")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [Problem("", f"cannot read the file: {exc}")]) from None
    return parse_config(text, str(path))


def _register_secrets(value: Any) -> None:
    if isinstance(value, SecretStr):
        register_secret(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _register_secrets(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            _register_secrets(item)
    elif isinstance(value, list):
        for item in value:
            _register_secrets(item)
    if isinstance(value, DatabaseConfig):
        from sqlalchemy.engine import make_url

        password = make_url(value.url).password
        register_secret(str(password) if password else None)


def load_database_config(path: str | os.PathLike[str] = DEFAULT_CONFIG_PATH) -> DatabaseConfig:
    """Only the `database` section: `openear db ...` works before every secret is set."""
    source = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(source, [Problem("", "file not found", None, "create one with `openear init`")]) from None
    except yaml.YAMLError:
        return load_config(path).database  # reports the YAML error with its line
    section = data.get("database", {}) if isinstance(data, dict) else {}
    problems: list[Problem] = []
    section = _substitute_env(section, ("database",), problems, {})
    if problems:
        raise ConfigError(source, problems)
    try:
        database = DatabaseConfig.model_validate(section or {})
    except ValidationError as exc:
        raise ConfigError(source, [_problem_from_error({**e, "loc": ("database", *e["loc"])}, {})
                                   for e in exc.errors()]) from None
    _register_secrets(database)
    return database
