"""Topic groups: complaints clustered by meaning, each labelled with its most distinctive phrases.

Method (`group_topics`):

1. Vectors. Each text's sentence vector, L2-normalised: stored at ingest for the configured embedder
   (`vectors_for` loads them and embeds only the missing ones, without storing them).
2. Centering. The e5 encoder's vectors are anisotropic (any two complaints have a cosine of about
   0.92, paraphrases about 0.95), and a multilingual encoder adds a language offset to every vector.
   So the corpus mean is subtracted, and for English and German texts (told apart by their stop
   words) the language's own mean, shrunk towards the corpus mean (weight n / (n + 4)), before
   normalising again. What is left is what sets one complaint apart from the day's others. Taking
   a mean out of few texts makes unrelated ones look opposed (-1/(n-1) for the corpus mean alone);
   that part is known exactly from the centering weights and added back (`_centering`).
3. Clustering. Agglomerative, average linkage on that cosine distance, cut at DISTANCE (0.85:
   members are on average a little more alike than two unrelated complaints); near-duplicates (raw
   cosine >= 0.99) always join. At most MAX_CLUSTER texts (evenly spaced) are clustered; each other
   text joins the cluster whose members it is closest to on average, if that is within DISTANCE,
   else stays alone. Two texts alone have no baseline: only duplicates group.
4. Labels. Class-based TF-IDF (c-TF-IDF, as in BERTopic) over phrases of 1-3 words that begin and
   end with a content word (inner stop words allowed: "parcel not delivered"): score(t, c) =
   tf(t, c) * ln(1 + A / f(t)), where tf(t, c) counts the cluster's texts containing t, f(t) the
   texts containing t in all clusters (singletons included), and A is the average number of content
   words per cluster. The best phrase leads (ties: the phrase of the text nearest the centroid, then
   the shorter), grown into a longer phrase when at least half of its texts (and two or more) share
   that; further phrases need max(2, size / 4) texts and no word in common with earlier ones.
   Examples are the two distinct texts nearest the centroid.

Parameters were chosen on a development set (8 complaint topics x 6 English/German paraphrases plus
12 one-off complaints; not the test corpus) embedded by the default classifier. Mean of the adjusted
Rand index on the whole set and over 100 random subsets of 4 topics: 0.58 (stored int8 vectors:
0.53) at DISTANCE 0.85, 0.48-0.55 elsewhere from 0.80 to 0.95; centering on the corpus mean alone
0.40, raw cosine at its best cut 0.39-0.41 (0.07, a cut that would not suit another embedder). The
encoder limits this: a text's nearest neighbour (centered) shares its topic for 79 % of the set.
tests/responders/test_topics.py measures a separate corpus.

Stop words: English (contractions included) and German; typographic apostrophes (’ ‘ ʼ) become "'"
before tokenizing, so "can’t" is one stop word, and a possessive "'s" is dropped ("parcel's").
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from models.vectors import Embedder, dequantize, load_vectors

DISTANCE = 0.85  # average-linkage cut on the centered cosine distance
LANGUAGE_PRIOR = 4  # shrinks a language's mean towards the corpus mean: weight n / (n + LANGUAGE_PRIOR)
DUPLICATE_COS = 0.99  # raw cosine at which two texts always group
MAX_CLUSTER = 2000  # texts clustered at most; the others are assigned to the nearest cluster
MAX_WORDS = 3  # longest phrase
LABEL_TERMS = 2  # phrases in a label
KEEP_TERMS = 5  # phrases kept in TopicGroup.terms
PHRASE_SHARE = 0.5  # a longer phrase replaces a shorter one found in at least this share of its texts

_EN_STOP = """
a about above after again against all also am an and any are aren't as at be because been before being below
between both but by can can't cannot could couldn't did didn't do does doesn't doing don't during each few
for from further get got had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers
herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself just let let's like
me more most much my myself no nor not now of off on once one only or other ought our ours ourselves out over
own same shan't she she'd she'll she's should shouldn't so some still such than that that's the their theirs
them themselves then there there's these they they'd they'll they're they've this those through to too under
until up us very via was wasn't we we'd we'll we're we've were weren't what what's when when's where where's
which while who who's whom why why's will with won't would wouldn't you you'd you'll you're you've your yours
yourself yourselves yet even really already since back ever never always today yesterday day days time ain't far
http https www com amp rt dm pls please hey hi hello thanks thank im ive dont cant wont didnt doesnt isnt wasnt
arent werent havent hasnt couldnt shouldnt wouldnt youre theyre thats whats theres lets gonna wanna gotta ago
anyone someone something anything everything nothing lol omg
"""
_DE_STOP = """
aber alle allem allen aller alles als also am an ander andere anderem anderen anderer anderes auch auf aus bei
bin bis bist da damit dann das dass daß dein deine deinem deinen deiner dem den denn der des dich die dir doch
dort du durch ein eine einem einen einer eines er es etwas euch euer eure eurem euren eurer für gegen gewesen
hab habe haben hat hatte hatten hätte hier hin hinter ich ihm ihn ihr ihre ihrem ihren ihrer ihres im in ist
jede jedem jeden jeder jedes jetzt kann kannst können könnt könnte kein keine keinem keinen keiner man manche
mehr mein meine meinem meinen meiner meines mich mir mit muss musste müssen nach nicht nichts noch nun nur ob
oder ohne schon sehr sein seine seinem seinen seiner seines sich sie sind so solche soll sollte sollen sondern
sonst über um und uns unser unsere unserem unseren unserer unter viel vom von vor war waren warum was weil
weiter welche wenn wer werde werden wie wieder will wir wird wo wurde würde wäre zu zum zur zwar heute gestern
mal ja nein bitte danke hallo seit immer gibt geht diese dieser dieses diesem diesen dies ab gar ganz halt eben
wohl echt leider bzw usw etc sei seid wollen wollte möchte darf mag wann wieso weshalb oft bereits wegen trotz
während daher darum dabei dafür danach davon dazu deren dessen denen ne nen nem ner beim ans ins aufs fürs
ums übers
"""
EN_STOPWORDS = frozenset(_EN_STOP.split())
DE_STOPWORDS = frozenset(_DE_STOP.split())
STOPWORDS = EN_STOPWORDS | DE_STOPWORDS
_MARKERS = {"en": EN_STOPWORDS - DE_STOPWORDS, "de": DE_STOPWORDS - EN_STOPWORDS}  # words only one language has

APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'"})
TOKEN_RE = re.compile(r"[^\W\d_][\w'\-]*[^\W_]|[^\W\d_]")
URL_RE = re.compile(r"https?://\S+|www\.\S+|[@#]\w+")
_SEGMENT_RE = re.compile(r"[^\w\s'\-]+")  # punctuation ends a phrase
_CLITIC_RE = re.compile(r"'(?:t|re|ve|ll|d|m)$")  # "can't", "they're", "we've", "i'll", "i'd", "i'm"


@dataclass(frozen=True)
class TopicGroup:
    """One group of similar texts: its label, size, member indices (ascending) and example quotes."""

    label: str  # the most distinctive phrases, joined by " · "
    size: int
    members: tuple[int, ...]
    examples: tuple[str, ...]  # up to two texts nearest the group's centroid
    terms: tuple[str, ...] = ()  # up to KEEP_TERMS distinctive phrases, best first


# ----------------------------------------------------------------------------- words
def _segments(text: str) -> list[list[str]]:
    """Lower-cased words per clause (apostrophes unified, URLs and handles removed, possessive 's dropped)."""
    clean = URL_RE.sub(" ", text.translate(APOSTROPHES).lower())
    out = []
    for part in _SEGMENT_RE.split(clean):
        words = [w[:-2] if w.endswith("'s") else w for w in TOKEN_RE.findall(part)]
        if words:
            out.append(words)
    return out


def is_stop(word: str, extra_stop: frozenset[str] = frozenset()) -> bool:
    """Short words, stop words (English with contractions, German) and `extra_stop`."""
    return len(word) < 3 or word in STOPWORDS or word in extra_stop or _CLITIC_RE.search(word) is not None


def tokens(text: str, extra_stop: frozenset[str] = frozenset()) -> list[str]:
    """The content words of `text`, lower-cased, in order."""
    return [w for words in _segments(text) for w in words if not is_stop(w, extra_stop)]


def phrases(text: str, extra_stop: frozenset[str] = frozenset()) -> set[str]:
    """The 1-3 word phrases of `text` that begin and end with a content word, within one clause."""
    found: set[str] = set()
    for words in _segments(text):
        if any(w in extra_stop for w in words):
            words = [w if w not in extra_stop else "" for w in words]  # a brand word breaks a phrase
        for i, first in enumerate(words):
            if not first or is_stop(first, extra_stop):
                continue
            found.add(first)
            for j in range(i + 1, min(i + MAX_WORDS, len(words))):
                if not words[j]:
                    break
                if not is_stop(words[j], extra_stop) and words[j] != first:
                    found.add(" ".join(words[i:j + 1]))
    return found


def language(text: str) -> str:
    """"en" or "de" by the stop words only that language has; "" when neither has more."""
    words = [w for seg in _segments(text) for w in seg]
    en = sum(w in _MARKERS["en"] for w in words)
    de = sum(w in _MARKERS["de"] for w in words)
    return "en" if en > de else "de" if de > en else ""


# ----------------------------------------------------------------------------- clustering
def _unit(vectors: np.ndarray) -> np.ndarray:
    x = np.asarray(vectors, np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms


def _centering(vectors: np.ndarray, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit rows less the corpus mean and (shrunk) their language's mean, normalised again; each row's group
    (0 English, 1 German, 2 other); and `bias`, the 3x3 table of what centering alone puts into the dot
    product of two unrelated rows of those groups, relative to a row's own spread (with itself: 1 + bias[g, g]).

    Each row loses a weighted mean of all rows, x_i - sum_k a_ik x_k, so independent residuals r come out
    as (I - A) r, with covariance (I - A)(I - A)^T = I - A - A^T + A A^T; a_ik only depends on the groups
    of i and k, so the table is exact. With the corpus mean alone it is -1/n: unrelated rows of a small
    corpus look a little opposed, and `_similarity` adds that back.
    """
    x = _unit(vectors)
    n = len(x)
    groups = np.array([{"en": 0, "de": 1}.get(language(t), 2) for t in texts], np.int64)
    sizes = np.bincount(groups, minlength=3).astype(np.float64)
    alpha, beta = np.full(3, 1.0 / max(n, 1)), np.zeros(3)  # a_ik = alpha[g_i] + beta[g_i] * (g_k == g_i)
    mean = x.mean(axis=0)
    out = x - mean
    for g in (0, 1):
        idx = np.flatnonzero(groups == g)
        if 0 < len(idx) < n:
            weight = len(idx) / (len(idx) + LANGUAGE_PRIOR)
            out[idx] = x[idx] - (mean + weight * (x[idx].mean(axis=0) - mean))
            alpha[g], beta[g] = (1 - weight) / n, weight / len(idx)
    same = np.eye(3)
    a = alpha[:, None] + beta[:, None] * same  # a[g, h]: the weight of one row of group h in the mean of g's
    aa = (n * np.outer(alpha, alpha) + np.outer(alpha, beta * sizes) + np.outer(beta * sizes, alpha)
          + np.outer(beta, beta) * sizes[:, None] * same)
    return _unit(out), groups, aa - a - a.T


def _similarity(x: np.ndarray, groups: np.ndarray, bias: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Cosines of centered rows with what centering alone adds taken out (unrelated rows: about 0)."""
    spread = np.sqrt(1.0 + np.diag(bias))[groups]
    return (x[rows] @ x[cols].T) * np.outer(spread[rows], spread[cols]) - bias[np.ix_(groups[rows], groups[cols])]


def cluster_labels(vectors: np.ndarray, texts: Sequence[str], threshold: float = DISTANCE,
                   max_cluster: int = MAX_CLUSTER) -> np.ndarray:
    """A cluster number per text (every text has one; a text alone is a cluster of one)."""
    if len(texts) == 0:
        return np.zeros(0, np.int64)
    return _cluster(*_centering(vectors, texts), _unit(vectors), threshold, max_cluster)


def _cluster(x: np.ndarray, groups: np.ndarray, bias: np.ndarray, raw: np.ndarray, threshold: float,
             max_cluster: int) -> np.ndarray:
    n = len(x)
    labels = np.full(n, -1, np.int64)
    sample = np.arange(n) if n <= max_cluster else np.unique(np.linspace(0, n - 1, max_cluster).round().astype(int))
    if len(sample) == 1:
        labels[sample] = 0
    else:
        from sklearn.cluster import AgglomerativeClustering  # imported when needed (about 1 s)

        dist = np.clip(1.0 - _similarity(x, groups, bias, sample, sample), 0.0, 2.0)  # two texts: 1
        dist[raw[sample] @ raw[sample].T >= DUPLICATE_COS] = 0.0
        np.fill_diagonal(dist, 0.0)
        fit = AgglomerativeClustering(n_clusters=None, metric="precomputed", linkage="average",
                                      distance_threshold=threshold).fit(dist)
        labels[sample] = fit.labels_
    rest = np.flatnonzero(labels < 0)
    if len(rest):  # the average similarity to each cluster's members, as in average linkage
        k = int(labels.max()) + 1
        spread = np.sqrt(1.0 + np.diag(bias))[groups]
        sums = np.zeros((k, x.shape[1]))
        np.add.at(sums, labels[sample], x[sample] * spread[sample, None])
        counts = np.zeros((k, 3))
        np.add.at(counts, (labels[sample], groups[sample]), 1.0)
        sims = ((x[rest] * spread[rest, None]) @ sums.T - bias[groups[rest]] @ counts.T) / counts.sum(axis=1)
        best = sims.argmax(axis=1)
        near = 1.0 - sims[np.arange(len(rest)), best] < threshold
        labels[rest[near]] = best[near]
        labels[rest[~near]] = k + np.arange(int((~near).sum()))
    return labels


# ----------------------------------------------------------------------------- labels
def class_tfidf(texts: Sequence[str], labels: Sequence[int] | np.ndarray, extra_stop: frozenset[str] = frozenset(),
                only: set[int] | None = None) -> dict[int, list[tuple[str, float, int]]]:
    """c-TF-IDF per cluster (those in `only`, else all): (phrase, score, texts containing it), best first.

    score = tf(t, c) * ln(1 + A / f(t)); tf counts the cluster's texts containing the phrase, f the
    texts containing it anywhere, A is the average number of content words per cluster.
    """
    docs = [phrases(t, extra_stop) for t in texts]
    words = sum(len(tokens(t, extra_stop)) for t in texts)
    clusters = set(int(c) for c in labels)
    avg = words / max(len(clusters), 1)
    total: Counter[str] = Counter()
    per: dict[int, Counter[str]] = {}
    for doc, c in zip(docs, labels, strict=True):
        total.update(doc)
        if only is None or int(c) in only:
            per.setdefault(int(c), Counter()).update(doc)
    return {c: sorted(((t, n * math.log(1 + avg / total[t]), n) for t, n in tf.items()),
                      key=lambda r: (-r[1], -len(r[0].split()), r[0]))
            for c, tf in per.items()}


def _content(phrase: str) -> set[str]:
    return {w for w in phrase.split() if not is_stop(w)}


def choose_terms(ranked: Sequence[tuple[str, float, int]], size: int,
                 rank_of: dict[str, int] | None = None) -> list[str]:
    """Up to KEEP_TERMS phrases of one cluster's c-TF-IDF list (see the module docstring)."""
    rank_of = rank_of or {}
    order = sorted(ranked, key=lambda r: (-round(r[1], 9), rank_of.get(r[0], len(rank_of)),
                                          len(r[0].split()), r[0]))
    support = {t: n for t, _, n in ranked}
    chosen: list[str] = []
    for term, _, n in order:
        if len(chosen) >= KEEP_TERMS:
            break
        if chosen and n < max(2, size / 4):
            continue
        grown = True
        while grown:  # a longer phrase that most of the term's texts share says more
            grown = False
            for longer, _, m in order:
                if (len(longer.split()) > len(term.split()) and f" {term} " in f" {longer} "
                        and m >= max(2, PHRASE_SHARE * support[term])):
                    term, grown = longer, True
                    break
        if term not in chosen and not any(_content(term) & _content(c) for c in chosen):
            chosen.append(term)
    return chosen


def group_topics(texts: list[str], vectors: np.ndarray, *, extra_stop: frozenset[str] = frozenset(),
                 limit: int = 8, min_size: int = 2) -> list[TopicGroup]:
    """Groups of similar `texts` (by `vectors`, one row each) of at least `min_size`, largest first."""
    if len(texts) != len(vectors):
        raise ValueError(f"{len(texts)} texts but {len(vectors)} vectors")
    if not texts:
        return []
    x, groups, bias = _centering(np.asarray(vectors), texts)
    labels = _cluster(x, groups, bias, _unit(np.asarray(vectors)), DISTANCE, MAX_CLUSTER)
    sizes = Counter(int(c) for c in labels)
    first = {int(c): i for i, c in reversed(list(enumerate(labels)))}
    kept = sorted((c for c, n in sizes.items() if n >= min_size), key=lambda c: (-sizes[c], first[c]))[:limit]
    if not kept:
        return []
    ranked = class_tfidf(texts, labels, extra_stop, only=set(kept))
    found = []
    for c in kept:
        members = np.flatnonzero(labels == c)
        centroid = x[members].mean(axis=0)
        central = members[np.argsort(-(x[members] @ centroid), kind="stable")]
        rank_of: dict[str, int] = {}
        for rank, i in enumerate(central):
            for p in phrases(texts[i], extra_stop):
                rank_of.setdefault(p, rank)
        terms = choose_terms(ranked.get(c, []), len(members), rank_of)
        examples: list[str] = []
        for i in central:
            if len(examples) == 2:
                break
            if " ".join(texts[i].split()).lower() not in {" ".join(e.split()).lower() for e in examples}:
                examples.append(texts[i])
        found.append(TopicGroup(" · ".join(terms[:LABEL_TERMS]), len(members),
                                tuple(int(i) for i in members), tuple(examples), tuple(terms)))
    return found


# ----------------------------------------------------------------------------- vectors
def vectors_for(session: Session, mention_ids: Sequence[int], texts: Sequence[str], embedder: Embedder) -> np.ndarray:
    """A unit-length float32 row per mention: its stored vector for `embedder.vector_key`, else one embedded
    now (not stored)."""
    if len(mention_ids) != len(texts):
        raise ValueError(f"{len(mention_ids)} mentions but {len(texts)} texts")
    if not texts:
        return np.zeros((0, 0), np.float32)
    stored = load_vectors(session, embedder.vector_key, list(mention_ids))
    missing = [i for i, m in enumerate(mention_ids) if m not in stored]
    fresh = _unit(embedder.embed([texts[i] for i in missing])) if missing else None
    dims = {len(v) for v in stored.values()} | ({fresh.shape[1]} if fresh is not None else set())
    if len(dims) != 1:
        raise ValueError(f"vectors of {embedder.vector_key!r} differ in length: {sorted(dims)}")
    out = np.zeros((len(texts), dims.pop()), np.float32)
    for i, m in enumerate(mention_ids):
        if m in stored:
            out[i] = dequantize(stored[m])
    if fresh is not None:
        out[missing] = fresh
    return out
