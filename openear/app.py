"""The composition root: builds every part from the config and hands dependencies in."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, cast

import requests
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from listener.locks import NamedLocks
from listener.platforms import SPECS, display_name
from listener.platforms.base import AuthFailed, ContentRejected, Hides, PlatformAdapter, PlatformError, Source
from listener.poller import ClassifierLike, Poller, PollResult
from listener.scheduler import Daemon, SourceRunner
from models.config import Config
from models.db import check_schema, make_engine, session_factory
from models.domain import MentionData
from models.inbox import DbInbox
from models.orm import utcnow
from models.sentiment.result import make_result
from models.vectors import Embedder, HashEmbedder
from openear.memory import limit_arenas, release_free_memory
from responders.dispatch import Dispatcher
from responders.queue.intake import Intake

log = logging.getLogger(__name__)
PROPOSE_MARGIN = timedelta(minutes=10)


class OpenEar:
    """Wires storage, adapters, classifier and services for the CLI, the daemon and the web app.

    Everything is built lazily, so a command only pays for what it uses (the classifier's model
    is loaded on the first poll that needs it, not at start-up).
    """

    def __init__(
        self,
        config: Config,
        *,
        engine: Engine | None = None,
        classifier: ClassifierLike | None = None,
        clock: Callable[[], datetime] = utcnow,
        http_session: Callable[[], requests.Session] | None = None,
    ) -> None:
        self.config, self.clock = config, clock
        self.engine = engine or make_engine(config.database.url)
        self.sessions: sessionmaker[Session] = session_factory(self.engine)
        self._classifier = classifier
        self._http_session = http_session
        self._send_pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def check_schema(self) -> None:
        check_schema(self.engine)

    # ------------------------------------------------------------------ parts

    @property
    def classifier(self) -> ClassifierLike:
        with self._lock:
            if self._classifier is None:
                from models.sentiment import build_classifier

                c = self.config.classifier
                self._classifier = self._adapted(build_classifier(c.model, device=c.device, batch_size=c.batch_size))
            classifier: ClassifierLike = self._classifier
            return classifier

    def _adapted(self, classifier: ClassifierLike) -> ClassifierLike:
        """With `classifier.adapt_priors`, a model with probabilities follows each brand's class mix
        (models/sentiment/adaptive.py); its windows are seeded from each brand's stored raw posteriors."""
        from models.sentiment.adaptive import WINDOW, BrandAdaptation, adaptable, stored_raw

        if not self.config.classifier.adapt_priors or adaptable(classifier) is None:
            return classifier
        adaptation = BrandAdaptation(classifier, window=WINDOW)
        try:
            with self.sessions() as session:
                for brand in self.config.brands:
                    shift = adaptation.seed(brand.name, stored_raw(session, brand.name, WINDOW))
                    log.info("classifier for %s: %s", brand.name, shift.describe())
        except SQLAlchemyError as exc:  # the windows then fill from the mentions polled from now on
            log.warning("could not read the stored raw scores to seed the brands' class mixes: %s", exc)
        return adaptation

    @cached_property
    def adapters(self) -> dict[str, PlatformAdapter]:
        """One adapter per platform the config enables, built from the one table (listener.platforms.SPECS)."""
        adapters: dict[str, PlatformAdapter] = {}
        for name, spec in SPECS.items():
            adapter = spec.build(self.config, clock=self.clock, session_factory=self._http_session,
                                 inbox=DbInbox(self.sessions))
            if adapter is not None:
                adapters[name] = adapter
        return adapters

    def sources(self, name: str | None = None) -> list[tuple[PlatformAdapter, Source]]:
        found = [(adapter, source) for adapter in self.adapters.values() for source in adapter.sources()]
        if name is not None:
            found = [(a, s) for a, s in found if s.name == name]
        return found

    @cached_property
    def intake(self) -> Intake:
        return Intake(self.sessions, ranking=self.config.ranking, clock=self.clock)

    @cached_property
    def poller(self) -> Poller:
        return Poller(self.sessions, _LazyClassifier(self), intake=self.intake, clock=self.clock)

    @cached_property
    def embedder(self) -> Embedder:
        """Sentence vectors for suggested replies and topic groups (models/vectors.py)."""
        return _AppEmbedder(self)

    @cached_property
    def dispatcher(self) -> Dispatcher:
        return Dispatcher(self.sessions, dict(self.adapters), clock=self.clock)

    # ------------------------------------------------------------------ actions

    def poll_all(self, name: str | None = None) -> list[PollResult]:
        """One poll of every source (or of `name`); errors are reported per source, never raised."""
        results = []
        for adapter, source in self.sources(name):
            try:
                results.append(self.poller.poll_once(adapter, source))
            except Exception as exc:
                results.append(PollResult(source=source.name, error=f"{type(exc).__name__}: {exc}",
                                          retry_at=getattr(exc, "retry_at", None)))
        return results

    def preflight(self) -> None:
        """Check every configured platform's credentials before the daemon starts (a Facebook user
        token where a page token belongs answers empty comment lists, no error). Raises AuthFailed
        naming every problem; a platform that cannot be asked now is logged and left to the polls."""
        problems = []
        for name, adapter in self.adapters.items():
            try:
                adapter.preflight()
            except AuthFailed as exc:
                problems.append(f"{display_name(name)}: {exc}")
            except PlatformError as exc:
                log.warning("could not check the %s credentials now (%s); the polls will report it",
                            display_name(name), exc)
        if problems:
            raise AuthFailed("openear cannot start with these credentials:\n  " + "\n  ".join(problems))

    def hide(self, mention: MentionData, hidden: bool) -> None:
        """The web app's moderation hook: hide (or show) a comment through its platform's adapter."""
        adapter = self.adapters.get(mention.platform)
        if adapter is None or SPECS[mention.platform].hideable is None:
            raise ContentRejected(f"{display_name(mention.platform)} comments cannot be hidden from openear")
        cast(Hides, adapter).hide(mention, hidden)

    def reply_queued(self, reply_id: int) -> None:
        """The web app's hook: send a freshly queued reply now, off the request thread."""
        with self._lock:
            if self._send_pool is None:
                self._send_pool = ThreadPoolExecutor(2, thread_name_prefix="send")
        self._send_pool.submit(self._dispatch_logged, reply_id)

    def _dispatch_logged(self, reply_id: int) -> None:
        try:
            self.dispatcher.dispatch(reply_id)
        except Exception:
            log.exception("sending reply %s failed; the daemon retries it", reply_id)

    def build_daemon(self) -> Daemon:
        """The daemon with every job registered: polls, dispatch, claim expiry, digest, retention."""
        limit_arenas()  # two heaps for all the daemon's threads (openear/memory.py)
        daemon = Daemon(self.engine)
        schedule = self.config.schedule
        locks = NamedLocks(self.engine)
        for adapter, source in self.sources():
            seconds = schedule.poll_seconds(source.platform, SPECS[source.platform].poll_seconds)
            runner = SourceRunner(self.poller, adapter, source, timedelta(seconds=seconds), locks, self.clock)
            daemon.add_interval(f"poll:{source.name}", runner, seconds, jitter=schedule.jitter_seconds)
        daemon.add_interval("dispatch", lambda: self.dispatcher.dispatch_due(), 5)
        daemon.add_interval("rerank", lambda: self.intake.rerank_open(), 300)
        daemon.add_interval("release_memory", release_free_memory, 60)  # freed heap back to the OS (openear/memory.py)
        for job_id, job, seconds in self.extra_jobs():
            daemon.add_interval(job_id, job, seconds)
        # the digest at the configured local time, and an hourly catch-up (after downtime, failed sends)
        daemon.add_daily("digest", self.send_digests, at=schedule.digest_time, timezone=schedule.timezone)
        daemon.add_interval("digest_catch_up", self.send_digests, 3600)
        return daemon

    def send_digests(self) -> Any:
        from responders.digest.archive import send_due_digests

        return send_due_digests(self.config, self.sessions, self.clock(), embedder=self.embedder)

    def extra_jobs(self) -> list[tuple[str, Callable[[], Any], int]]:
        """Periodic jobs of the responders layer: claim expiry, link proposals, retention, digests."""
        from responders import queue
        from responders.customers import propose_links
        from responders.retention import apply_retention

        jobs: list[tuple[str, Callable[[], Any], int]] = []
        customers = self.config.customers

        last_run: list[datetime] = []

        def propose_job() -> None:
            """New pairs since the previous run (a margin for late commits); two days on a process's first.
            One instance at a time: two would derive the same keys and propose the same pairs."""
            with NamedLocks(self.engine).hold("propose_links") as mine:
                if not mine:
                    log.debug("propose_links is running on another instance; skipping")
                    return
                now = self.clock()
                since = last_run[0] - PROPOSE_MARGIN if last_run else now - timedelta(days=2)
                with self.sessions.begin() as session:
                    propose_links(session, now, since=since, min_confidence=customers.propose_min_confidence,
                                  auto_link_confidence=customers.auto_link_confidence,
                                  brands=[brand.name for brand in self.config.brands])
                last_run[:] = [now]

        def retention_job() -> None:
            with self.sessions.begin() as session:
                summary = apply_retention(session, self.clock(), self.config.retention, self.config.timezones())
            log.info("retention applied: %s", summary)

        jobs.append(("propose_links", propose_job, 1800))
        jobs.append(("retention", retention_job, 86400))
        timeout_minutes = self.config.queue.claim_timeout_minutes

        def expire_job() -> None:
            with self.sessions.begin() as session:
                queue.expire_claims(session, self.clock(), timeout_minutes)

        jobs.append(("expire_claims", expire_job, 60))

        def sign_in_housekeeping_job() -> None:
            """Delete ended web sessions and login-throttle counts that are over (both grow with every login)."""
            from responders import sessions as web_sessions
            from responders.throttle import LoginThrottler

            now = self.clock()
            with self.sessions.begin() as session:
                ended = web_sessions.purge(session, now=now, lifetimes=web_sessions.Lifetimes.of(self.config.web))
                forgotten = LoginThrottler(self.config.web.login).purge(session, now=now)
            if ended or forgotten:
                log.info("sign-in housekeeping: %d old sessions, %d throttle counts deleted", ended, forgotten)

        jobs.append(("sign_in_housekeeping", sign_in_housekeeping_job, 3600))
        retrain = self.config.classifier.retrain
        if retrain.enabled and retrain.data and self.config.classifier.model == "default":

            def retrain_job() -> None:
                """Retrain from the corrections; a model that passes the gate is used from the next poll on."""
                from pathlib import Path

                from responders.learning import learn_complaint
                from responders.learning import retrain as retrain_from_corrections

                with NamedLocks(self.engine).hold("classifier_retrain") as mine:
                    if not mine:
                        return
                    outcome = retrain_from_corrections(self.sessions, Path(str(retrain.data)), now=self.clock(),
                                                       min_corrections=retrain.min_corrections)
                    log.info("classifier retrain: %s", outcome.message)
                    complaint = learn_complaint(self.sessions, now=self.clock())
                    log.info("classifier retrain: %s", complaint.message)
                if outcome.switched or complaint.switched:
                    with self._lock:
                        self._classifier = None  # rebuilt (with the new version) on the next classification

            jobs.append(("classifier_retrain", retrain_job, retrain.every_hours * 3600))
        return jobs

    def close(self) -> None:
        if self._send_pool is not None:
            self._send_pool.shutdown(wait=True)
        self.engine.dispose()


class _AppEmbedder:
    """The classifier's sentence vectors where it has them (the default), else the lexical HashEmbedder."""

    def __init__(self, app: OpenEar) -> None:
        self.app = app
        self._hash = HashEmbedder()

    def _target(self) -> Embedder:
        classifier = self.app.classifier
        if getattr(classifier, "vector_key", None) and callable(getattr(classifier, "embed", None)):
            return cast(Embedder, classifier)
        return self._hash

    @property
    def vector_key(self) -> str:
        return str(self._target().vector_key)

    def embed(self, texts: list[str]) -> Any:
        return self._target().embed(texts)


class _LazyClassifier:
    """Defers loading the model until the first mention needs it."""

    def __init__(self, app: OpenEar) -> None:
        self.app = app

    def classify(self, texts: list[str]) -> Any:
        return self.app.classifier.classify(texts)

    def classify_with_raw(self, texts: list[str], brands: list[str]) -> tuple[Any, Any]:
        """Results adapted to each text's brand and the raw posteriors (None from a classifier that
        does not adapt)."""
        classifier = self.app.classifier
        with_raw = getattr(classifier, "classify_with_raw", None)
        if callable(with_raw):
            results, raw = with_raw(texts, brands)
            return results, raw
        return classifier.classify(texts), None

    def classify_scored(self, texts: list[str], brands: list[str]) -> tuple[Any, Any, Any]:
        """`classify_with_raw` and the sentence vectors (None from a classifier without them)."""
        classifier = self.app.classifier
        scored = getattr(classifier, "classify_scored", None)
        if callable(scored):
            results, raw, vectors = scored(texts, brands)
            return results, raw, vectors
        both = getattr(classifier, "probabilities_and_vectors", None)
        if callable(both):  # the default without prior adaptation
            probs, vectors = both(texts)
            complaint = getattr(classifier, "complaint_model", None)
            return [make_result(t, p, complaint) for t, p in zip(texts, probs, strict=True)], probs, vectors
        results, raw = self.classify_with_raw(texts, brands)
        return results, raw, None

    @property
    def vector_key(self) -> str | None:
        """The loaded classifier's vector space; asks only once the model is needed anyway."""
        key = getattr(self.app.classifier, "vector_key", None)
        return str(key) if key else None
