"""Who might be whom: matching keys, pair scores and text clues for cross-platform link proposals.

Every author gets *blocking keys* derived from its name and handle (`n:jana|b`, `c:janabecker`,
`l:becker`, ...) and, on X, its lower-cased handle (`h:jana_b`), stored in `author_keys` and derived
again whenever the author changes. Only authors that share a blocking key are ever compared, and the
proposal job reads only the blocks of the authors it was asked about, so its time and memory follow
the new authors, not the size of the database. Texts give further clues: a Facebook post that names
an X handle, a post that links a profile.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, bindparam, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.orm import Session

from listener.platforms import SPECS
from models.db import pow2_batches, pow2_padded
from models.orm import Author, AuthorKey, Base, LinkProposal, Mention

MAX_BLOCK = 400  # a blocking key shared by more authors than this is too common to say anything
PAGE = 512  # authors per key refresh, ids per lookup (lookups go in power-of-two batches: models.db)
HANDLE = "h:"  # prefix of the handle keys (lookups from texts, not blocking)

_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "ae", "Ö": "oe", "Ü": "ue"})
_HANDLE_RE = re.compile(r"(?<![\w@])@([A-Za-z0-9_]{2,15})\b")
_URL_RE = re.compile(r"(?:https?://)?(?:www\.|m\.)?(x\.com|twitter\.com|facebook\.com|instagram\.com)/([A-Za-z0-9_.]{2,64})",
                     re.IGNORECASE)
_CROSS_HINT = re.compile(r"\b(also|auch|as|als|on x|on twitter|on facebook|on instagram|auf x|auf facebook|"
                         r"auf instagram|wrote|schrieb)\b", re.IGNORECASE)

Pair = tuple[int, int]


def has_handles(platform: str) -> bool:
    spec = SPECS.get(platform)
    return spec is not None and spec.has_handles


def normalise(text: str | None) -> list[str]:
    """Lower-case ASCII word tokens: umlauts transliterated, accents and emoji dropped."""
    if not text:
        return []
    folded = unicodedata.normalize("NFKD", text.translate(_TRANSLIT))
    ascii_text = "".join(ch for ch in folded if ch.isascii()).lower()
    return re.findall(r"[a-z]+|\d+", ascii_text)


def handle_key(handle: str | None) -> str:
    """A handle without separators and trailing digits: @Jana_Becker87 -> janabecker."""
    return re.sub(r"\d+$", "", "".join(normalise(handle))) if handle else ""


@dataclass(frozen=True)
class Person:
    id: int
    platform: str
    handle: str | None
    name: str | None
    customer_id: int | None
    tokens: tuple[str, ...]
    handle_key: str

    @classmethod
    def of(cls, id: int, platform: str, handle: str | None, name: str | None, customer_id: int | None) -> Person:
        return cls(id, platform, handle, name, customer_id, tuple(normalise(name)), handle_key(handle))

    @property
    def label(self) -> str:
        if self.handle and has_handles(self.platform):
            return f"@{self.handle}"
        return repr(self.name or self.handle or "?")


def blocking_keys(person: Person) -> set[str]:
    keys: set[str] = set()
    words = [t for t in person.tokens if not t.isdigit()]
    if len(words) >= 2:
        first, last = words[0], words[-1]
        keys |= {f"n:{first}|{last[0]}", f"c:{first}{last}", f"c:{first[0]}{last}"}
        if len(last) >= 3:
            keys.add(f"l:{last}")
    elif words and len(words[0]) >= 4:
        keys.add(f"c:{words[0]}")
    if len(person.handle_key) >= 4:
        keys.add(f"c:{person.handle_key}")
    return keys


def stored_keys(person: Person) -> set[str]:
    """What `author_keys` holds for a person: its blocking keys and, on X, its handle."""
    keys = {k[:120] for k in blocking_keys(person)}
    if person.handle and has_handles(person.platform):
        keys.add(HANDLE + person.handle.lower()[:118])
    return keys


def _handle_matches_name(handle_key: str, words: list[str]) -> bool:
    if len(handle_key) < 3 or len(words) < 2:
        return False
    first, last = words[0], words[-1]
    forms = {first + last, first + "_" + last, first[0] + last, first + last[0], first + last[:6],
             first[0] + last[:6], last + first}
    return handle_key in {f.replace("_", "") for f in forms} or (
        handle_key.startswith(first) and last.startswith(handle_key[len(first):]) and len(handle_key) > len(first))


def score_pair(a: Person, b: Person) -> tuple[float, list[str]]:
    """Confidence 0..1 that two identities are one person, with the evidence (names only, no texts)."""
    evidence: list[tuple[float, str]] = []
    wa = [t for t in a.tokens if not t.isdigit()]
    wb = [t for t in b.tokens if not t.isdigit()]
    if wa and wb:
        if wa == wb:
            evidence.append((0.6, f"same name: {a.name!r} and {b.name!r}"))
        elif len(wa) >= 2 and len(wb) >= 2 and wa[0] == wb[0] and (
                (len(wa[-1]) == 1 and wb[-1].startswith(wa[-1])) or (len(wb[-1]) == 1 and wa[-1].startswith(wb[-1]))):
            evidence.append((0.45, f"name with initial: {a.name!r} ~ {b.name!r}"))
        else:
            ratio = difflib.SequenceMatcher(None, " ".join(wa), " ".join(wb)).ratio()
            overlap = len(set(wa) & set(wb)) / len(set(wa) | set(wb))
            if ratio >= 0.85:
                evidence.append((0.45 * ratio, f"similar names ({ratio:.2f}): {a.name!r} ~ {b.name!r}"))
            elif overlap >= 0.5 and ratio >= 0.6:
                evidence.append((0.25, f"names share words: {a.name!r} ~ {b.name!r}"))
    for x, y in ((a, b), (b, a)):
        if x.handle and _handle_matches_name(x.handle_key, [t for t in y.tokens if not t.isdigit()]):
            evidence.append((0.3, f"handle @{x.handle} fits the name {y.name!r}"))
    if a.handle_key and a.handle_key == b.handle_key and len(a.handle_key) >= 4:
        evidence.append((0.5, f"same handle on both platforms: {a.handle_key}"))
    return combine(evidence)


def combine(evidence: list[tuple[float, str]]) -> tuple[float, list[str]]:
    remaining = 1.0
    for weight, _ in evidence:
        remaining *= 1.0 - weight
    return round(min(1.0 - remaining, 0.99), 3), [text for _, text in evidence]


# ---------------------------------------------------------------------- storage


def refresh_keys(session: Session) -> int:
    """Derive the keys of every author that is new or changed since its keys were derived.

    `keys_at` records the `updated_at` the keys were derived from (not a clock of this process), so
    an author changed while this runs is derived again next time. Pages of PAGE authors in id order
    (keyset), so memory stays bounded. Returns how many authors were keyed.
    """
    table = Base.metadata.tables["authors"]
    stale = or_(Author.keys_at.is_(None), Author.updated_at != Author.keys_at)
    done, after = 0, 0
    while True:
        rows = session.execute(
            select(Author.id, Author.platform, Author.handle, Author.display_name, Author.updated_at)
            .where(Author.is_brand.is_(False), stale, Author.id > after).order_by(Author.id).limit(PAGE)
        ).all()
        if not rows:
            return done
        ids = [r.id for r in rows]
        session.execute(delete(AuthorKey).where(AuthorKey.author_id.in_(pow2_padded(ids))))
        keys = [{"key": key, "author_id": r.id} for r in rows
                for key in sorted(stored_keys(Person.of(r.id, r.platform, r.handle, r.display_name, None)))]
        for batch in pow2_batches(keys, PAGE):
            session.execute(insert(AuthorKey), list(batch))
        # SET updated_at = updated_at: the column's onupdate must not make every author look changed
        session.execute(update(table).where(table.c.id == bindparam("author")).values(
            keys_at=bindparam("seen"), updated_at=table.c.updated_at),
            [{"author": r.id, "seen": r.updated_at} for r in rows])
        done, after = done + len(rows), ids[-1]


def people(session: Session, ids: Iterable[int]) -> dict[int, Person]:
    """The non-brand authors among `ids`."""
    found: dict[int, Person] = {}
    for batch in pow2_batches(sorted(set(ids)), PAGE):
        for r in session.execute(select(Author.id, Author.platform, Author.handle, Author.display_name,
                                        Author.customer_id)
                                 .where(Author.id.in_(batch), Author.is_brand.is_(False))):
            found[r.id] = Person.of(r.id, r.platform, r.handle, r.display_name, r.customer_id)
    return found


def blocks(session: Session, fresh_since: datetime | None) -> Iterator[list[int]]:
    """The author ids of each useful block (2..MAX_BLOCK members): every block, or with
    `fresh_since` only those of authors first seen since then."""
    usable: ColumnElement[bool] = ~AuthorKey.key.startswith(HANDLE)
    if fresh_since is not None:
        fresh_keys = select(AuthorKey.key).join(Author, Author.id == AuthorKey.author_id).where(
            Author.first_seen_at >= fresh_since)
        usable = and_(usable, AuthorKey.key.in_(fresh_keys))
    sized = select(AuthorKey.key).where(usable).group_by(AuthorKey.key).having(
        func.count().between(2, MAX_BLOCK))
    current: str | None = None
    members: list[int] = []
    rows = session.execute(select(AuthorKey.key, AuthorKey.author_id).where(AuthorKey.key.in_(sized))
                           .order_by(AuthorKey.key, AuthorKey.author_id).execution_options(yield_per=2000))
    for key, author_id in rows:
        if key != current:
            if members:
                yield members
            current, members = key, []
        members.append(author_id)
    if members:
        yield members


def fresh_authors(session: Session, since: datetime) -> set[int]:
    return set(session.scalars(select(Author.id).where(Author.first_seen_at >= since)))


def text_clues(session: Session, since: datetime | None, brands: Sequence[str] | None = None) -> dict[Pair, str]:
    """Pairs found in texts since `since`: a Facebook post naming an X handle, a post linking a profile.

    Streams the texts; the named handles and profiles are looked up by key afterwards. With `since`
    and `brands` the texts are read by the (brand, created_at) index instead of a scan of every mention.
    """
    may_name = and_(Mention.platform != "x", Mention.text.like("%@%"))  # on X every mention names someone
    may_link = or_(Mention.text.ilike("%x.com/%"), Mention.text.ilike("%twitter.com/%"),
                   Mention.text.ilike("%facebook.com/%"))
    query = select(Mention.author_id, Mention.platform, Mention.text).where(Mention.is_own.is_(False),
                                                                            or_(may_name, may_link))
    if since is not None:
        query = query.where(Mention.created_at >= since)
        if brands:
            query = query.where(Mention.brand.in_(sorted(set(brands))))
    # (author, platform of the post, "x" handle or "facebook" id, the target, how it was seen)
    seen: list[tuple[int, str, str, str, str]] = []
    for author_id, platform, text in session.execute(query.execution_options(yield_per=2000)):
        hint = " (says it is them)" if _CROSS_HINT.search(text) else ""
        if platform != "x":
            seen += [(author_id, platform, "x", handle, f"names @{handle}{hint}")
                     for handle in _HANDLE_RE.findall(text)]
        for site, path in _URL_RE.findall(text):
            site = site.lower()
            seen.append((author_id, platform, "facebook" if site == "facebook.com" else "x", path,
                         f"links the profile {site}/{path}"))
    if not seen:
        return {}
    by_handle = _lookup_handles(session, {t.lower() for _, _, kind, t, _ in seen if kind == "x"})
    by_fb_id = _lookup_facebook(session, {t for _, _, kind, t, _ in seen if kind == "facebook"})
    targets = {(kind, t): by_handle.get(t.lower()) if kind == "x" else by_fb_id.get(t) for _, _, kind, t, _ in seen}
    who = people(session, {a for a, *_ in seen} | {i for i in targets.values() if i is not None})
    clues: dict[Pair, str] = {}
    for author_id, platform, kind, target, how in seen:
        other = targets[(kind, target)]
        if author_id not in who or other is None or other not in who or who[other].platform == platform:
            continue
        where = f"a {platform} post" if how.startswith("names") else "a post"
        clues[(author_id, other)] = f"{where} by {who[author_id].label} {how}"
    return clues


def _lookup_handles(session: Session, handles: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for batch in pow2_batches(sorted(handles), PAGE):
        keys = [HANDLE + h for h in batch]
        for key, author_id in session.execute(select(AuthorKey.key, AuthorKey.author_id)
                                              .where(AuthorKey.key.in_(keys))):
            found[key[len(HANDLE):]] = author_id
    return found


def _lookup_facebook(session: Session, external_ids: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for batch in pow2_batches(sorted(external_ids), PAGE):
        keys = [("facebook", e) for e in batch]
        for author_id, external_id in session.execute(
                select(Author.id, Author.external_id).where(tuple_(Author.platform, Author.external_id).in_(keys),
                                                            Author.is_brand.is_(False))):
            found[external_id] = author_id
    return found


def existing_pairs(session: Session, pairs: Iterable[Pair]) -> set[Pair]:
    """The pairs among `pairs` that already have a proposal (in any state)."""
    found: set[Pair] = set()
    for batch in pow2_batches(sorted(set(pairs)), PAGE):
        rows = session.execute(select(LinkProposal.author_a, LinkProposal.author_b).where(
            tuple_(LinkProposal.author_a, LinkProposal.author_b).in_(batch)))
        found.update((a, b) for a, b in rows)
    return found


def pairs_in(members: list[int], who: dict[int, Person]) -> Iterator[Pair]:
    """Cross-platform pairs (lower id first) within one block."""
    for i, x in enumerate(members):
        for y in members[i + 1:]:
            if x in who and y in who and who[x].platform != who[y].platform:
                yield (min(x, y), max(x, y))

