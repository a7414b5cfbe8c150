"""The contract every platform adapter passes, against its emulator over real HTTP.

Subclass `AdapterContract` in a test module (its name must start with `Test`) and provide the
fixtures below; every test here then runs for that adapter. Fault specs are those of
`sandbox.httpserver` (http_500, http_503, malformed_json, truncated_json, slow:S, rate_limit_burst:N).

Fixtures a subclass provides:
    adapter            a PlatformAdapter talking to a running emulator (short timeout, < 1 s)
    bad_auth_adapter   the same adapter with credentials the emulator refuses
    secrets            the credential values (none may appear in an error message)
    source             a Source of `adapter` on which `add_post` posts appear
    add_post           callable(text) -> external id: a customer posts `text` on the emulator
    inject_fault       callable(spec, after=0): script a fault for the adapter's next request(s)
    now                callable() -> aware datetime: the emulator's current time
    keyword            a word that makes a post visible on `source` (contract texts contain it)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import fields
from datetime import datetime
from typing import Any

import pytest

from listener.platforms.base import (
    AuthFailed,
    FetchResult,
    PlatformAdapter,
    PlatformError,
    RateLimited,
    Source,
    Transient,
)
from models.domain import AuthorData, MentionData, Platform, clean_text

AddPost = Callable[[str], str]
InjectFault = Callable[..., None]

HOSTILE_TEXTS = {
    "html": '<script>alert("x")</script> <b>bold</b> &amp; &lt;tag&gt; a & b',
    "long": "long " + "ß" * 10_000,
    "rtl": "\u202eevil\u202c مرحبا بكم שלום",
    "emoji": "👍🏽 👨‍👩‍👧 🇩🇪 \U0001faf6",
    "nul": "before\x00after",
    "lone_surrogate": "broken \ud800 pair",
    "whitespace": "  tabs\tand\nnew\r\nlines  ",
}


def _plain_json(value: Any) -> bool:
    """True when `value` holds only JSON-native builtins (no SDK objects)."""
    if value is None or type(value) in (str, int, float, bool):
        return True
    if type(value) is list:
        return all(_plain_json(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _plain_json(v) for k, v in value.items())
    return False


def assert_domain_types(result: FetchResult) -> None:
    """Nothing of the SDK in a fetch result: only models.domain types and builtins."""
    assert type(result) is FetchResult
    assert result.next_cursor is None or type(result.next_cursor) is str
    assert type(result.mentions) is list
    for mention in result.mentions:
        assert type(mention) is MentionData and type(mention.author) is AuthorData
        assert type(mention.platform) is Platform and type(mention.author.platform) is Platform
        for f in fields(MentionData):
            value = getattr(mention, f.name)
            if f.name in ("platform", "author", "created_at", "raw"):
                continue
            assert value is None or type(value) in (str, bool), (f.name, type(value))
        for f in fields(AuthorData):
            value = getattr(mention.author, f.name)
            assert f.name == "platform" or value is None or type(value) in (str, int), (f.name, type(value))
        assert type(mention.created_at) is datetime and mention.created_at.utcoffset() is not None
        assert _plain_json(mention.raw)
        json.dumps(mention.raw)
        assert "\x00" not in json.dumps(mention.raw, ensure_ascii=False)


def assert_adapter_error(exc: BaseException, secrets: list[str]) -> None:
    """Adapter errors are ours (not the SDK's) and never carry a secret."""
    assert isinstance(exc, PlatformError)
    assert type(exc).__module__.startswith("listener."), type(exc)
    for secret in secrets:
        assert secret not in str(exc)


class AdapterContract:
    """Tests every PlatformAdapter must pass. Subclasses provide the fixtures listed in the module doc."""

    @pytest.fixture
    def keyword(self) -> str:
        return "acme"

    # -- fetching -------------------------------------------------------------------------------

    def _baseline(self, adapter: PlatformAdapter, source: Source) -> str | None:
        return adapter.fetch(source, None).next_cursor

    def test_new_posts_come_oldest_first_once(self, adapter: PlatformAdapter, source: Source,
                                              add_post: AddPost, keyword: str) -> None:
        cursor = self._baseline(adapter, source)
        ids = [add_post(f"{keyword} first"), add_post(f"{keyword} second"), add_post(f"{keyword} third")]
        result = adapter.fetch(source, cursor)
        assert_domain_types(result)
        assert [m.external_id for m in result.mentions] == ids
        assert [m.created_at for m in result.mentions] == sorted(m.created_at for m in result.mentions)
        assert all(m.source == source.name and m.brand == source.brand for m in result.mentions)
        assert result.next_cursor is not None and result.next_cursor != cursor
        again = adapter.fetch(source, result.next_cursor)
        assert again.mentions == [] and again.next_cursor == result.next_cursor

    def test_first_poll_without_cursor(self, adapter: PlatformAdapter, source: Source, add_post: AddPost,
                                       keyword: str) -> None:
        post_id = add_post(f"{keyword} hello")
        result = adapter.fetch(source, None)
        assert result.mentions[-1].external_id == post_id and result.next_cursor is not None

    def test_nothing_new_keeps_cursor(self, adapter: PlatformAdapter, source: Source) -> None:
        cursor = self._baseline(adapter, source)
        result = adapter.fetch(source, cursor)
        assert result.mentions == [] and result.next_cursor == cursor

    def test_many_posts_span_pages(self, adapter: PlatformAdapter, source: Source, add_post: AddPost,
                                   keyword: str) -> None:
        cursor = self._baseline(adapter, source)
        ids = [add_post(f"{keyword} number {i}") for i in range(250)]
        result = adapter.fetch(source, cursor)
        assert [m.external_id for m in result.mentions] == ids

    def test_error_mid_pagination_returns_nothing(self, adapter: PlatformAdapter, source: Source,
                                                  add_post: AddPost, inject_fault: InjectFault,
                                                  keyword: str) -> None:
        cursor = self._baseline(adapter, source)
        ids = [add_post(f"{keyword} number {i}") for i in range(250)]
        inject_fault("http_503", after=1)
        with pytest.raises(Transient):
            adapter.fetch(source, cursor)
        assert [m.external_id for m in adapter.fetch(source, cursor).mentions] == ids

    @pytest.mark.parametrize("after", [0, 1, 2])
    def test_a_rate_limit_anywhere_in_a_poll_loses_and_repeats_nothing(
            self, adapter: PlatformAdapter, source: Source, add_post: AddPost, inject_fault: InjectFault,
            keyword: str, now: Callable[[], datetime], after: int) -> None:
        """A 429 on the poll's (after+1)-th request: the adapter either raises RateLimited (nothing read,
        the old cursor stays) or returns the pages it read with `interrupted` and a cursor for the
        rest. Either way the next poll brings exactly the posts not returned yet."""
        cursor = self._baseline(adapter, source)
        ids = [add_post(f"{keyword} number {i}") for i in range(250)]
        inject_fault("rate_limit_burst:1", after=after)
        try:
            first = adapter.fetch(source, cursor)
        except RateLimited as exc:
            assert exc.retry_at > now()
            first = FetchResult([], cursor)
        else:
            assert first.interrupted is not None and first.interrupted.retry_at > now()
            assert first.mentions, "an interrupted fetch returns the pages it read"
            assert_domain_types(first)
        rest = adapter.fetch(source, first.next_cursor)
        assert rest.interrupted is None
        got = [m.external_id for m in first.mentions] + [m.external_id for m in rest.mentions]
        assert sorted(got) == sorted(ids)  # every post once: none lost, none twice
        assert adapter.fetch(source, rest.next_cursor).mentions == []

    def test_preflight_accepts_good_credentials(self, adapter: PlatformAdapter) -> None:
        adapter.preflight()

    @pytest.mark.parametrize("name", sorted(HOSTILE_TEXTS))
    def test_hostile_text_comes_back_intact_or_cleaned(self, adapter: PlatformAdapter, source: Source,
                                                       add_post: AddPost, keyword: str, name: str) -> None:
        cursor = self._baseline(adapter, source)
        text = f"{keyword} {HOSTILE_TEXTS[name]}"
        add_post(text)
        (mention,) = adapter.fetch(source, cursor).mentions
        assert mention.text == clean_text(text)[0]
        mention.text.encode("utf-8")

    # -- errors ---------------------------------------------------------------------------------

    def test_rate_limited(self, adapter: PlatformAdapter, source: Source, inject_fault: InjectFault,
                          now: Callable[[], datetime], secrets: list[str]) -> None:
        inject_fault("rate_limit_burst:1")
        with pytest.raises(RateLimited) as info:
            adapter.fetch(source, None)
        assert_adapter_error(info.value, secrets)
        assert info.value.retry_at.utcoffset() is not None and info.value.retry_at > now()

    def test_auth_failure(self, bad_auth_adapter: PlatformAdapter, source: Source,
                          secrets: list[str]) -> None:
        with pytest.raises(AuthFailed) as info:
            bad_auth_adapter.fetch(source, None)
        assert_adapter_error(info.value, secrets)

    @pytest.mark.parametrize("spec", ["http_500", "http_503", "malformed_json", "truncated_json", "slow:2"])
    def test_server_trouble_is_transient(self, adapter: PlatformAdapter, source: Source, add_post: AddPost,
                                         inject_fault: InjectFault, secrets: list[str], keyword: str,
                                         spec: str) -> None:
        cursor = self._baseline(adapter, source)
        post_id = add_post(f"{keyword} survives")
        inject_fault(spec)
        with pytest.raises(Transient) as info:
            adapter.fetch(source, cursor)
        assert_adapter_error(info.value, secrets)
        assert [m.external_id for m in adapter.fetch(source, cursor).mentions] == [post_id]

    # -- replies --------------------------------------------------------------------------------

    def test_reply_is_reported_as_own_and_found_again(self, adapter: PlatformAdapter, source: Source,
                                                      add_post: AddPost, keyword: str) -> None:
        cursor = self._baseline(adapter, source)
        add_post(f"{keyword} my order is late")
        first = adapter.fetch(source, cursor)
        (mention,) = first.mentions
        assert not mention.is_own
        text = f"Sorry! The {keyword} team is on it ✓"
        reply_id = adapter.post_reply(mention, text)
        assert type(reply_id) is str and reply_id
        (reply,) = adapter.fetch(source, first.next_cursor).mentions
        assert reply.external_id == reply_id and reply.is_own
        assert reply.in_reply_to_id == mention.external_id and text in reply.text
        assert adapter.find_reply(mention, text) == reply_id
        assert adapter.find_reply(mention, text + " (another text)") is None

    def test_reply_failure_is_typed(self, adapter: PlatformAdapter, source: Source, add_post: AddPost,
                                    inject_fault: InjectFault, keyword: str, secrets: list[str]) -> None:
        cursor = self._baseline(adapter, source)
        add_post(f"{keyword} please answer")
        (mention,) = adapter.fetch(source, cursor).mentions
        inject_fault("http_503")
        with pytest.raises(Transient) as info:
            adapter.post_reply(mention, "hello")
        assert_adapter_error(info.value, secrets)

    def test_sources_are_unique_and_typed(self, adapter: PlatformAdapter) -> None:
        sources = adapter.sources()
        assert sources and len({s.name for s in sources}) == len(sources)
        assert all(type(s) is Source and s.platform == adapter.platform for s in sources)
