"""The configuration schema (config.yaml) and its loader.

Loading is strict: unknown keys and wrong types are rejected at start-up, and every problem names
the file, the key path, the line and, where it can, a hint. Values may reference environment
variables as `${NAME}` (required) or `${NAME:-default}`; secrets must come that way.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
)

from models.secrets import register_secret

DEFAULT_CONFIG_PATH = "config.yaml"
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Section(BaseModel):
    """Base of every config section: unknown keys and silent type coercion are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {value!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'") from None
    return value


class BrandAccounts(Section):
    x: list[str] = Field(default_factory=list, description="the brand's own X handles, without @")
    facebook: list[str] = Field(default_factory=list, description="ids of the brand's Facebook pages")

    @field_validator("x")
    @classmethod
    def _strip_at(cls, handles: list[str]) -> list[str]:
        return [h.removeprefix("@") for h in handles]


class BrandQueries(Section):
    x: list[str] = Field(default_factory=list, description="X search queries (X query syntax)")


class BrandConfig(Section):
    name: str = Field(min_length=1)
    languages: list[str] = Field(default_factory=lambda: ["en", "de"])
    timezone: str = "UTC"
    accounts: BrandAccounts = Field(default_factory=BrandAccounts)
    queries: BrandQueries = Field(default_factory=BrandQueries)

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        return _check_timezone(value)


class XConfig(Section):
    enabled: bool = True
    base_url: str | None = Field(default=None, description="override the API host, e.g. the sandbox")
    bearer_token: SecretStr
    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    access_token_secret: SecretStr | None = None


class FacebookConfig(Section):
    enabled: bool = True
    base_url: str | None = None
    api_version: str = Field(default="v25.0", pattern=r"^v\d+\.\d+$")
    page_tokens: dict[str, SecretStr] = Field(description="page id -> page access token")
    lookback_days: int = Field(default=14, ge=1, le=90)


class PlatformsConfig(Section):
    x: XConfig | None = None
    facebook: FacebookConfig | None = None


class DatabaseConfig(Section):
    url: str = Field(default="sqlite:///openear.db", repr=False)

    def __repr_args__(self) -> Any:
        yield "url", self.display_url

    @field_validator("url")
    @classmethod
    def _parseable(cls, url: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(url)
        except ArgumentError:
            raise ValueError("not a valid database URL; examples: sqlite:///openear.db, "
                             "postgresql+psycopg://user@127.0.0.1:5432/openear") from None
        return url

    @field_serializer("url")
    def _hide_password(self, _url: str) -> str:
        return self.display_url

    @property
    def display_url(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)


class ClassifierConfig(Section):
    model: str = Field(default="default", description="'default' (embedded), a hub id or a local path")
    device: str = "cpu"
    batch_size: int = Field(default=32, ge=1, le=1024)


class RankingWeights(Section):
    negativity: float = Field(default=0.40, ge=0)
    complaint_cues: float = Field(default=0.20, ge=0)
    waiting: float = Field(default=0.15, ge=0)
    reach: float = Field(default=0.10, ge=0)
    history: float = Field(default=0.15, ge=0)


class RankingConfig(Section):
    weights: RankingWeights = Field(default_factory=RankingWeights)
    waiting_full_hours: float = Field(default=24.0, gt=0, description="waiting time that counts fully")
    reach_full_followers: int = Field(default=100_000, gt=0, description="reach that counts fully")


class PollIntervals(Section):
    x: int = Field(default=60, ge=5)
    facebook: int = Field(default=120, ge=5)


class ScheduleConfig(Section):
    poll_interval_seconds: PollIntervals = Field(default_factory=PollIntervals)
    jitter_seconds: int = Field(default=5, ge=0)
    digest_time: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        return _check_timezone(value)


class QueueConfig(Section):
    sla_hours: float = Field(default=4.0, gt=0)
    claim_timeout_minutes: int = Field(default=30, ge=1)


class SmtpConfig(Section):
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str = "openear@localhost"


class DigestConfig(Section):
    recipients: list[str] = Field(default_factory=list)
    smtp: SmtpConfig | None = None


class LoginConfig(Section):
    """Sign-in throttling: growing delays after a few failures, then a lockout a password cannot lift."""

    free_failures: int = Field(default=3, ge=1, le=100, description="failures before delays begin")
    max_failures: int = Field(default=10, ge=2, le=1000, description="failures per account before it is locked")
    max_failures_per_address: int = Field(default=50, ge=2, le=100000,
                                          description="failures from one client address before it is locked")
    window_minutes: int = Field(default=15, ge=1, le=24 * 60, description="failures older than this are forgotten")
    lockout_minutes: int = Field(default=15, ge=1, le=7 * 24 * 60, description="how long a lock lasts")


class WebConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    secret_key: SecretStr = Field(min_length=16)
    public_url: str | None = Field(default=None, description="base URL used in digest links")
    session_idle_minutes: int = Field(default=120, ge=5, le=30 * 24 * 60,
                                      description="a session unused for this long ends")
    session_max_hours: int = Field(default=12, ge=1, le=90 * 24,
                                   description="every session ends this long after sign-in")
    max_body_kb: int = Field(default=256, ge=16, le=64 * 1024, description="larger request bodies are refused (413)")
    login: LoginConfig = Field(default_factory=LoginConfig)


class CustomersConfig(Section):
    propose_min_confidence: float = Field(default=0.35, ge=0, le=1, description="weaker link candidates are ignored")
    auto_link_confidence: float | None = Field(
        default=None, ge=0, le=1, description="link without a person's confirmation at or above this (null: never)"
    )


class RetentionConfig(Section):
    raw_payload_days: int = Field(default=90, ge=1)
    mention_days: int = Field(default=730, ge=1)


class Config(Section):
    brands: list[BrandConfig] = Field(min_length=1)
    platforms: PlatformsConfig = Field(default_factory=PlatformsConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    ranking: RankingConfig = Field(default_factory=RankingConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    queue: QueueConfig = Field(default_factory=QueueConfig)
    digest: DigestConfig = Field(default_factory=DigestConfig)
    web: WebConfig
    customers: CustomersConfig = Field(default_factory=CustomersConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    def timezones(self) -> dict[str, str]:
        """Each brand's timezone, by brand name (the local day of a mention)."""
        return {brand.name: brand.timezone for brand in self.brands}

    def brand(self, name: str) -> BrandConfig:
        for brand in self.brands:
            if brand.name == name:
                return brand
        raise KeyError(name)


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    line: int | None = None
    hint: str | None = None


class ConfigError(Exception):
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


def summary(config: Config) -> dict[str, Any]:
    """A secret-free overview for `openear config check`."""
    platforms = {}
    if config.platforms.x:
        x = config.platforms.x
        platforms["x"] = {"enabled": x.enabled, "base_url": x.base_url or "(real API)"}
    if config.platforms.facebook:
        fb = config.platforms.facebook
        platforms["facebook"] = {"enabled": fb.enabled, "base_url": fb.base_url or "(real API)",
                                 "api_version": fb.api_version, "pages": sorted(fb.page_tokens)}
    return {
        "brands": [
            {"name": b.name, "languages": b.languages, "x_queries": len(b.queries.x),
             "x_accounts": b.accounts.x, "facebook_pages": b.accounts.facebook}
            for b in config.brands
        ],
        "platforms": platforms,
        "database": config.database.display_url,
        "classifier": config.classifier.model,
        "schedule": {"poll_x_s": config.schedule.poll_interval_seconds.x,
                     "poll_facebook_s": config.schedule.poll_interval_seconds.facebook,
                     "digest": f"{config.schedule.digest_time} {config.schedule.timezone}"},
        "queue_sla_hours": config.queue.sla_hours,
        "digest_recipients": len(config.digest.recipients),
        "web": f"{config.web.host}:{config.web.port}",
    }


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
