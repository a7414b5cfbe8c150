"""The X search query language, as far as a listening bot uses it: tokenizer, parser and matcher.

Supported: keywords (case-insensitive, whole-word), "exact phrases", `@mention`, `#hashtag`, implicit
AND, `OR`, parentheses, negation with `-` (of a term, phrase, operator or group) and the operators
`from:`, `to:`, `lang:`, `is:retweet|reply|quote`, `has:links|mentions|hashtags`, `conversation_id:`.
AND binds tighter than OR, as on X. Like X, a query needs at least one positive stand-alone clause
(`-is:retweet` or `lang:de` alone are refused).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

MAX_QUERY_LENGTH = 512
WORD_RE = re.compile(r"\w+")
MENTION_RE = re.compile(r"@(\w{1,50})")
HASHTAG_RE = re.compile(r"#(\w+)")
_OPERATOR_RE = re.compile(r"([a-z_]+):(.*)", re.DOTALL)
_OPERATORS = ("from", "to", "lang", "is", "has", "conversation_id")
_IS_VALUES = ("retweet", "reply", "quote")
_HAS_VALUES = ("links", "mentions", "hashtags")
_STANDALONE = ("word", "phrase", "mention", "hashtag", "from", "to", "conversation_id")


class QueryError(ValueError):
    """The query is not valid; the message says why and where."""


class Searchable(Protocol):
    """What the matcher reads from a stored post (all strings case-folded).

    `norm` is " " + " ".join(word tokens) + " ", for phrase matching.
    """

    @property
    def words(self) -> frozenset[str]: ...
    @property
    def norm(self) -> str: ...
    @property
    def mentions(self) -> frozenset[str]: ...
    @property
    def hashtags(self) -> frozenset[str]: ...
    @property
    def lang(self) -> str: ...
    @property
    def author_username(self) -> str: ...
    @property
    def author_id(self) -> int: ...
    @property
    def conversation_id(self) -> int: ...
    @property
    def is_retweet(self) -> bool: ...
    @property
    def is_reply(self) -> bool: ...
    @property
    def in_reply_to_username(self) -> str: ...
    @property
    def has_links(self) -> bool: ...


@dataclass(frozen=True)
class Term:
    kind: str  # word | phrase | mention | hashtag | from | to | lang | is | has | conversation_id
    value: str


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node = Term | Not | And | Or
Predicate = Callable[[Searchable], bool]


def text_tokens(text: str) -> list[str]:
    """The case-folded word tokens of `text`, as keywords and phrases are matched against."""
    return WORD_RE.findall(text.casefold())


# -- tokenizer --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    kind: str  # "(" | ")" | "OR" | "-" | "term"
    pos: int
    term: Term | None = None


def _term_for(word: str, pos: int) -> Term:
    match = _OPERATOR_RE.fullmatch(word)
    if match:
        op, value = match.group(1), match.group(2)
        if op not in _OPERATORS:
            raise QueryError(f"Reference to invalid operator '{op}'. Operator is not available in current "
                             f"product or product packaging. (at position {pos + 1})")
        if not value:
            raise QueryError(f"Operator '{op}' needs a value (at position {pos + 1})")
        value = value.casefold()
        if op == "is" and value not in _IS_VALUES:
            raise QueryError(f"Reference to invalid field 'is:{value}' (at position {pos + 1})")
        if op == "has" and value not in _HAS_VALUES:
            raise QueryError(f"Reference to invalid field 'has:{value}' (at position {pos + 1})")
        if op == "conversation_id" and not value.isdigit():
            raise QueryError(f"conversation_id must be a numeric post id (at position {pos + 1})")
        return Term(op, value.lstrip("@"))
    if word.startswith("@") and len(word) > 1:
        return Term("mention", word[1:].casefold())
    if word.startswith("#") and len(word) > 1:
        return Term("hashtag", word[1:].casefold())
    tokens = text_tokens(word)
    if len(tokens) == 1:
        return Term("word", tokens[0])
    return Term("phrase", " ".join(tokens))


def tokenize(query: str) -> list[Token]:
    """Split a query into tokens; raises QueryError on unterminated quotes and the like."""
    tokens: list[Token] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            tokens.append(Token(ch, i))
            i += 1
        elif ch == "-" and i + 1 < n and not query[i + 1].isspace() and query[i + 1] != ")":
            tokens.append(Token("-", i))
            i += 1
        elif ch == '"':
            end = query.find('"', i + 1)
            if end < 0:
                raise QueryError(f"Unterminated quoted phrase (at position {i + 1})")
            phrase = " ".join(text_tokens(query[i + 1:end]))
            if not phrase:
                raise QueryError(f"Empty quoted phrase (at position {i + 1})")
            tokens.append(Token("term", i, Term("phrase", phrase)))
            i = end + 1
        else:
            start = i
            while i < n and not query[i].isspace() and query[i] not in '()"':
                i += 1
            word = query[start:i]
            if word == "OR":
                tokens.append(Token("OR", start))
            elif word == "-":
                raise QueryError(f"Dangling '-' (at position {start + 1})")
            else:
                tokens.append(Token("term", start, _term_for(word, start)))
    return tokens


# -- parser -----------------------------------------------------------------------------------------

class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def parse(self) -> Node:
        node = self.or_expr()
        extra = self.peek()
        if extra is not None:
            what = ("Unbalanced parentheses: ')' without '('" if extra.kind == ")"
                    else f"Unexpected '{extra.kind}'")
            raise QueryError(f"{what} (at position {extra.pos + 1})")
        return node

    def or_expr(self) -> Node:
        children = [self.and_expr()]
        while (tok := self.peek()) is not None and tok.kind == "OR":
            self.i += 1
            if self.peek() is None or self.peek().kind in (")", "OR"):  # type: ignore[union-attr]
                raise QueryError(f"'OR' needs a clause on both sides (at position {tok.pos + 1})")
            children.append(self.and_expr())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def and_expr(self) -> Node:
        children: list[Node] = []
        while (tok := self.peek()) is not None and tok.kind not in (")", "OR"):
            children.append(self.unary())
        if not children:
            tok = self.peek()
            where = f"at position {tok.pos + 1}" if tok else "at the end"
            what = f"'{tok.kind}'" if tok else "end of query"
            raise QueryError(f"Expected a clause before {what} ({where})")
        return children[0] if len(children) == 1 else And(tuple(children))

    def unary(self) -> Node:
        tok = self.peek()
        assert tok is not None
        if tok.kind == "-":
            self.i += 1
            nxt = self.peek()
            if nxt is None or nxt.kind not in ("term", "("):
                raise QueryError(f"'-' must be followed by a clause (at position {tok.pos + 1})")
            return Not(self.primary())
        return self.primary()

    def primary(self) -> Node:
        tok = self.peek()
        assert tok is not None
        self.i += 1
        if tok.kind == "(":
            node = self.or_expr()
            close = self.peek()
            if close is None or close.kind != ")":
                raise QueryError(f"Unbalanced parentheses: '(' is never closed (at position {tok.pos + 1})")
            self.i += 1
            return node
        if tok.kind == "term" and tok.term is not None:
            return tok.term
        raise QueryError(f"Unexpected '{tok.kind}' (at position {tok.pos + 1})")


def _has_positive_standalone(node: Node) -> bool:
    if isinstance(node, Term):
        return node.kind in _STANDALONE
    if isinstance(node, Not):
        return False
    if isinstance(node, And):
        return any(_has_positive_standalone(c) for c in node.children)
    return all(_has_positive_standalone(c) for c in node.children)


def parse(query: str) -> Node:
    """Parse an X search query into a tree; raises QueryError."""
    if not query or not query.strip():
        raise QueryError("The query parameter can not be empty")
    if len(query) > MAX_QUERY_LENGTH:
        raise QueryError(f"Query is {len(query)} characters long; the limit is {MAX_QUERY_LENGTH}")
    node = _Parser(tokenize(query)).parse()
    if not _has_positive_standalone(node):
        raise QueryError("Rules must contain at least one positive, non-stopword clause "
                         "(is:, lang: and has: need another clause)")
    return node


# -- matcher ----------------------------------------------------------------------------------------

def _term_predicate(term: Term) -> Predicate:
    value = term.value
    if term.kind == "word":
        return lambda t: value in t.words
    if term.kind == "phrase":
        padded = f" {value} "
        return lambda t: padded in t.norm
    if term.kind == "mention":
        return lambda t: value in t.mentions
    if term.kind == "hashtag":
        return lambda t: value in t.hashtags
    if term.kind == "from":
        return lambda t: t.author_username == value or str(t.author_id) == value
    if term.kind == "to":
        return lambda t: t.in_reply_to_username == value
    if term.kind == "lang":
        return lambda t: t.lang == value
    if term.kind == "conversation_id":
        number = int(value)
        return lambda t: t.conversation_id == number
    if term.kind == "is":
        if value == "retweet":
            return lambda t: t.is_retweet
        if value == "reply":
            return lambda t: t.is_reply
        return lambda t: False  # is:quote: the emulator has no quote posts
    if value == "links":
        return lambda t: t.has_links
    if value == "mentions":
        return lambda t: bool(t.mentions)
    return lambda t: bool(t.hashtags)


def to_predicate(node: Node) -> Predicate:
    """Compile a parsed query into a function post -> bool."""
    if isinstance(node, Term):
        return _term_predicate(node)
    if isinstance(node, Not):
        inner = to_predicate(node.child)
        return lambda t: not inner(t)
    preds = [to_predicate(c) for c in node.children]
    if isinstance(node, And):
        return lambda t: all(p(t) for p in preds)
    return lambda t: any(p(t) for p in preds)


def compile_query(query: str) -> Predicate:
    """Parse and compile in one step; raises QueryError."""
    return to_predicate(parse(query))
