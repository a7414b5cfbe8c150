"""The configuration schema (config.yaml): one strict section class per part of openear.

Unknown keys and silent type coercion are errors; models/config_loader.py reads the file, fills in
environment references and turns every validation error into a problem with file, key, line and hint.
"""

from __future__ import annotations

import difflib
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)


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
    instagram: list[str] = Field(default_factory=list,
                                 description="ids of the brand's Instagram professional accounts (IG user ids)")

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


class PlatformSection(Section):
    """What every platform's section has; a platform's own keys come in its subclass."""

    enabled: bool = True
    base_url: str | None = Field(default=None, description="override the API host, e.g. the sandbox")

    def summary(self) -> dict[str, Any]:
        """A secret-free overview for `openear config check`."""
        return {"enabled": self.enabled, "base_url": self.base_url or "(real API)"}


class ReadBudget(Section):
    """How many posts one source may read: X bills every post read, and a backlog is read on later."""

    per_poll: int = Field(default=1000, ge=10, le=30_000,
                          description="posts one poll of a source reads at most; the next polls read on")
    per_day: int | None = Field(default=None, ge=100,
                                description="posts a source reads per UTC day at most (unset: no daily cap)")


class XConfig(PlatformSection):
    bearer_token: SecretStr
    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    access_token_secret: SecretStr | None = None
    read_budget: ReadBudget = Field(default_factory=ReadBudget)

    def summary(self) -> dict[str, Any]:
        budget = self.read_budget
        return {**super().summary(), "read_budget": f"{budget.per_poll} per poll, "
                f"{budget.per_day if budget.per_day is not None else 'no cap'} per day"}


class FacebookConfig(PlatformSection):
    api_version: str = Field(default="v25.0", pattern=r"^v\d+\.\d+$")
    page_tokens: dict[str, SecretStr] = Field(description="page id -> page access token")
    lookback_days: int = Field(default=14, ge=1, le=90)

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "api_version": self.api_version, "pages": sorted(self.page_tokens)}


class WebhookConfig(Section):
    """Meta's webhooks for the app (Instagram field `mentions`), received at the web app's /webhooks/instagram."""

    app_secret: SecretStr = Field(description="the app secret: Meta signs each delivery with it (X-Hub-Signature-256)")
    verify_token: SecretStr = Field(description="the verify token entered in the App Dashboard's webhook set-up")


class InstagramConfig(PlatformSection):
    """Instagram professional accounts through the Graph API with Facebook login (host graph.facebook.com)."""

    api_version: str = Field(default="v25.0", pattern=r"^v\d+\.\d+$")
    account_tokens: dict[str, SecretStr] = Field(
        description="Instagram account id -> the page access token of the Facebook page it is connected to")
    lookback_days: int = Field(default=14, ge=1, le=90)
    webhooks: WebhookConfig | None = Field(
        default=None, description="receive @mentions on other accounts' media (Instagram pushes them only by webhook)")

    @field_validator("account_tokens")
    @classmethod
    def _numeric_ids(cls, tokens: dict[str, SecretStr]) -> dict[str, SecretStr]:
        bad = [key for key in tokens if not key.isdigit()]
        if bad:
            raise ValueError(f"Instagram account ids are numbers (the IG user id, e.g. 17841400000000001), got "
                             f"{', '.join(map(repr, bad))}; the page's instagram_business_account field names it")
        return tokens

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "api_version": self.api_version, "accounts": sorted(self.account_tokens),
                "webhooks": "on (/webhooks/instagram)" if self.webhooks is not None else "off"}


class PlatformsConfig(Section):
    """One section per platform (its name is the platform's key in listener.platforms.SPECS)."""

    x: XConfig | None = None
    facebook: FacebookConfig | None = None
    instagram: InstagramConfig | None = None

    def sections(self) -> dict[str, PlatformSection]:
        """The configured platform sections by platform name."""
        return {name: section for name in type(self).model_fields
                if isinstance(section := getattr(self, name), PlatformSection)}


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


class RetrainConfig(Section):
    """The opt-in daemon job that retrains the default model from the team's corrections (gated)."""

    enabled: bool = False
    every_hours: int = Field(default=168, ge=1, description="hours between retrain attempts")
    min_corrections: int = Field(default=50, ge=1, description="corrections needed before a retrain runs")
    data: str | None = Field(default=None, description="the labelled datasets dir (validation sets for the "
                                                       "gate, replay data), e.g. ../shared/datasets")

    @field_validator("data")
    @classmethod
    def _data_dir_exists(cls, value: str | None) -> str | None:
        from pathlib import Path

        if value is not None and not list(Path(value).glob("*/val.tsv")):
            raise ValueError(f"{value!r} holds no */val.tsv: point it at the labelled datasets "
                             "(e.g. ../shared/datasets)")
        return value

    @model_validator(mode="after")
    def _data_when_enabled(self) -> RetrainConfig:
        if self.enabled and self.data is None:
            raise ValueError("classifier.retrain.enabled needs classifier.retrain.data (the datasets dir the gate "
                             "validates on)")
        return self


class ClassifierConfig(Section):
    model: str = Field(default="default", description="'default' (embedded), a hub id or a local path")
    device: str = "cpu"
    batch_size: int = Field(default=32, ge=1, le=1024)
    adapt_priors: bool = Field(
        default=True, description="adapt the classifier to each brand's class mix, estimated from its recent "
        "mentions (bounded prior shift; models with probabilities only)")
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)


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


class ScheduleConfig(Section):
    poll_interval_seconds: dict[str, int] = Field(
        default_factory=dict, description="platform -> seconds between polls (default: the platform's own)")
    jitter_seconds: int = Field(default=5, ge=0)
    digest_time: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        return _check_timezone(value)

    @field_validator("poll_interval_seconds")
    @classmethod
    def _known_platforms(cls, intervals: dict[str, int]) -> dict[str, int]:
        known = list(PlatformsConfig.model_fields)
        for name, seconds in intervals.items():
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"unknown platform {name!r}{hint}; known: {', '.join(known)}")
            if seconds < 5:
                raise ValueError(f"{name}: poll at most every 5 seconds (got {seconds})")
        return intervals

    def poll_seconds(self, platform: str, default: int) -> int:
        """The poll interval of `platform`'s sources: the configured one, else the platform's default."""
        return self.poll_interval_seconds.get(platform, default)


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


def summary(config: Config) -> dict[str, Any]:
    """A secret-free overview for `openear config check`."""
    return {
        "brands": [
            {"name": b.name, "languages": b.languages, "queries": b.queries.model_dump(),
             "accounts": b.accounts.model_dump()}
            for b in config.brands
        ],
        "platforms": {name: section.summary() for name, section in config.platforms.sections().items()},
        "database": config.database.display_url,
        "classifier": config.classifier.model,
        "schedule": {"poll_interval_seconds": dict(config.schedule.poll_interval_seconds),
                     "digest": f"{config.schedule.digest_time} {config.schedule.timezone}"},
        "queue_sla_hours": config.queue.sla_hours,
        "digest_recipients": len(config.digest.recipients),
        "web": f"{config.web.host}:{config.web.port}",
    }
