"""The search bar's language: what a person types, tokenized and parsed into
terms that resolvers/search_terms.py turns into SQL conditions (resolvers/search_sql.py: the whole search).

    ann@example.com            that exact email (case-insensitive)
    (555) 010-4477             that exact phone, in any common format (E.164)
    "Ann Lee"                  that exact name (case-insensitive)
    ann lee                    every name containing "ann" and "lee"
    has:mobile_phone has:email is:loyalty_member is:archived
    opted_in:TEXT opted_out:EMAIL source:loyalty source:raw_file source:NAME
    tag:VIP attr:tier=gold store:"Main Street"
    points>=500 spent>100 orders=3 last_seen<30 signed_up>=2024-01-01

Everything is combined with AND. A condition's value may be quoted to hold
spaces (tag:"big spender"); comparisons may be spaced (points >= 500). A
malformed query raises SearchSyntaxError (code BAD_QUERY) naming what is wrong
and the character (counted from 1) where it is.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from models.enums import Channel, OptInStatus, SourceKind
from resolvers.errors import BadQuery, UserError
from resolvers.identity import normalize_email, normalize_phone
from resolvers.search_query import (
    AttributeIs,
    Comparison,
    ConsentIs,
    Email,
    ExactName,
    Flag,
    Phone,
    SearchQuery,
    SourceIs,
    StoreIs,
    TagIs,
    Term,
)

OPERATORS = ("<=", ">=", "<", ">", "=")
OPERATOR_CHARS = frozenset("<>=")
COMPARISON_FIELDS = ("points", "spent", "orders", "last_seen", "signed_up")
CONDITION_KEYS = ("has", "is", "opted_in", "opted_out", "source", "tag", "attr", "store")
HAS_VALUES = ("mobile_phone", "email")
IS_VALUES = ("loyalty_member", "archived")
# Fewer digits than this is a name word, not a phone number.
MIN_PHONE_DIGITS = 7
_CONDITION = re.compile(r"^([A-Za-z_]+):")
_PHONE_CHARS = re.compile(r"^[0-9()+.\-]+$")
_EMAIL = re.compile(r"^[^@\s\"]+@[^@\s\"]+\.[^@\s\"]+$")
_WHOLE = re.compile(r"^\d{1,9}$")
_MONEY = re.compile(r"^\$?(\d{1,9})(\.\d{1,2})?$")
_DAYS = re.compile(r"^(\d{1,6})d?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class SearchSyntaxError(BadQuery):
    """A malformed query; `position` is the character at fault, counted from 1."""

    def __init__(self, problem: str, offset: int) -> None:
        self.position = offset + 1
        super().__init__(f"{problem} (at character {self.position})")


def phone_e164(term: Phone, region: str) -> str | None:
    """The number in E.164, None for a placeholder number; a bad number is a syntax error."""
    try:
        return normalize_phone(term.raw, region)
    except UserError:
        raise SearchSyntaxError(f"{term.raw!r} is not a valid phone number", term.offset) from None


# ------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class Token:
    text: str
    offset: int


def tokenize(text: str) -> list[Token]:
    """Split on spaces, keeping quoted parts whole; glue spaced comparisons together."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        while i < n and not text[i].isspace():
            if text[i] == '"':
                close = text.find('"', i + 1)
                if close < 0:
                    raise SearchSyntaxError('Unclosed quote: add the closing "', i)
                i = close + 1
            else:
                i += 1
        tokens.append(Token(text[start:i], start))
    return _glue_comparisons(tokens, text)


def _glue_comparisons(tokens: list[Token], text: str) -> list[Token]:
    """`points >= 500` is one comparison: join tokens around an operator."""
    glued: list[Token] = []
    for token in tokens:
        if glued and (glued[-1].text[-1] in OPERATOR_CHARS or token.text[0] in OPERATOR_CHARS):
            previous = glued.pop()
            end = token.offset + len(token.text)
            spaced = text[previous.offset : end]
            glued.append(Token(re.sub(r"\s+", "", spaced) if '"' not in spaced else spaced, previous.offset))
        else:
            glued.append(token)
    return glued


# ---------------------------------------------------------------- parser


@dataclass
class _Parse:
    text: str
    terms: list[Term] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    phone_run: list[Token] = field(default_factory=list)

    def flush_phone_run(self) -> None:
        run, self.phone_run = self.phone_run, []
        if not run:
            return
        digits = sum(ch.isdigit() for t in run for ch in t.text)
        if digits < MIN_PHONE_DIGITS:
            self.words.extend(t.text.lower() for t in run)
            return
        end = run[-1].offset + len(run[-1].text)
        self.terms.append(Phone(self.text[run[0].offset : end], run[0].offset))


def parse_search(text: str | None) -> SearchQuery:
    """Parse what was typed into the search bar; SearchSyntaxError when it is malformed."""
    state = _Parse(text or "")
    for token in tokenize(state.text):
        if _PHONE_CHARS.match(token.text) and any(ch.isdigit() for ch in token.text):
            state.phone_run.append(token)
            continue
        state.flush_phone_run()
        _parse_token(state, token)
    state.flush_phone_run()
    return SearchQuery(terms=tuple(state.terms), name_words=tuple(state.words))


def _parse_token(state: _Parse, token: Token) -> None:
    raw, at = token.text, token.offset
    if raw.startswith('"'):
        state.terms.append(ExactName(" ".join(_unquote(raw, at, "name").lower().split())))
        return
    condition = _CONDITION.match(raw)
    if condition is not None:
        key = condition.group(1).lower()
        rest, rest_at = raw[condition.end() :], at + condition.end()
        if key in COMPARISON_FIELDS:
            # points:500 means points=500; points:>=500 is points>=500.
            explicit = rest[:1] in OPERATOR_CHARS
            _parse_comparison(state, key, rest if explicit else "=" + rest, rest_at if explicit else rest_at - 1)
            return
        if key not in CONDITION_KEYS:
            known = ", ".join(f"{k}:" for k in CONDITION_KEYS)
            raise SearchSyntaxError(f"Unknown condition '{condition.group(1)}:'; the conditions are {known}", at)
        state.terms.append(_CONDITION_PARSERS[key](rest, rest_at))
        return
    if "@" in raw:
        if not _EMAIL.match(raw):
            raise SearchSyntaxError(f"{raw!r} is not a complete email address", at)
        state.terms.append(Email(_email_key(raw)))
        return
    if _has_operator(raw):
        _parse_bare_comparison(state, raw, at)
        return
    if '"' in raw:
        raise SearchSyntaxError("Unexpected quote: quote a whole name, or a condition's value after its colon", at)
    state.words.append(raw.lower())


def _email_key(raw: str) -> str:
    """The email as identity keys hold it (resolvers/identity.py), or lower-cased when it is not valid."""
    try:
        return normalize_email(raw) or raw.lower()
    except UserError:
        return raw.lower()


def _has_operator(raw: str) -> bool:
    return any(ch in OPERATOR_CHARS for ch in raw)


def _first_operator(raw: str) -> int:
    return min(raw.index(ch) for ch in OPERATOR_CHARS if ch in raw)


def _parse_bare_comparison(state: _Parse, raw: str, at: int) -> None:
    split = _first_operator(raw)
    name = raw[:split]
    if not name:
        raise SearchSyntaxError(f"A comparison needs a field before {raw[:2]!r}: one of {_fields()}", at)
    if name.lower() not in COMPARISON_FIELDS:
        raise SearchSyntaxError(f"Unknown field {name!r} in a comparison; comparisons work on {_fields()}", at)
    _parse_comparison(state, name.lower(), raw[split:], at + split)


def _fields() -> str:
    return ", ".join(COMPARISON_FIELDS)


def _parse_comparison(state: _Parse, name: str, rest: str, rest_at: int) -> None:
    operator = next((op for op in OPERATORS if rest.startswith(op)), None)
    if operator is None:
        raise SearchSyntaxError(f"{name} needs one of > >= < <= = before its value", rest_at)
    value, value_at = rest[len(operator) :], rest_at + len(operator)
    if not value:
        raise SearchSyntaxError(f"Missing value after '{name}{operator}'", value_at)
    if _has_operator(value):
        raise SearchSyntaxError(f"Bad comparison '{name}{rest}': one operator, then a value", value_at)
    state.terms.append(Comparison(name, operator, _COMPARISON_VALUES[name](value, value_at)))


def _whole_number(name: str) -> Callable[[str, int], int]:
    def parse(value: str, at: int) -> int:
        if not _WHOLE.match(value):
            raise SearchSyntaxError(f"{name} compares with a whole number, not {value!r}", at)
        return int(value)

    return parse


def _money_cents(value: str, at: int) -> int:
    match = _MONEY.match(value)
    if match is None:
        raise SearchSyntaxError(f"spent compares with an amount in dollars such as 100 or 99.50, not {value!r}", at)
    try:
        return int(Decimal(value.lstrip("$")) * 100)
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise SearchSyntaxError(f"{value!r} is not an amount", at) from None


def _days(value: str, at: int) -> int:
    match = _DAYS.match(value)
    if match is None:
        raise SearchSyntaxError(f"last_seen compares with a number of days such as 30, not {value!r}", at)
    return int(match.group(1))


def _date(value: str, at: int) -> dt.date:
    if not _DATE.match(value):
        raise SearchSyntaxError(f"{value!r} is not a date: write it as YYYY-MM-DD", at)
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise SearchSyntaxError(f"{value!r} is not a date on the calendar", at) from None


_COMPARISON_VALUES: dict[str, Callable[[str, int], int | dt.date]] = {
    "points": _whole_number("points"),
    "orders": _whole_number("orders"),
    "spent": _money_cents,
    "last_seen": _days,
    "signed_up": _date,
}


def _unquote(raw: str, at: int, what: str) -> str:
    """A value as typed: bare, or wholly in quotes."""
    if raw.startswith('"'):
        close = raw.index('"', 1)
        if close != len(raw) - 1:
            raise SearchSyntaxError(f"Unexpected text after the closing quote of the {what}", at + close + 1)
        value = raw[1:-1].strip()
        if not value:
            raise SearchSyntaxError(f"Empty quotes: put the {what} between them", at)
        return value
    if '"' in raw:
        raise SearchSyntaxError(f"Unexpected quote in the {what}: quote the whole {what}", at + raw.index('"'))
    if not raw:
        raise SearchSyntaxError(f"Missing {what}", at)
    return raw


def _one_of(key: str, value: str, at: int, allowed: tuple[str, ...]) -> str:
    if not value:
        raise SearchSyntaxError(f"{key}: needs a value: one of {', '.join(allowed)}", at)
    if value.lower() not in allowed:
        raise SearchSyntaxError(f"Unknown value {key}:{value}; {key}: takes one of {', '.join(allowed)}", at)
    return value.lower()


def _has(rest: str, at: int) -> Term:
    return Flag(_one_of("has", rest, at, HAS_VALUES))


def _is(rest: str, at: int) -> Term:
    return Flag(_one_of("is", rest, at, IS_VALUES))


def _consent(status: OptInStatus, key: str) -> Callable[[str, int], Term]:
    channels = tuple(c.value.lower() for c in Channel)

    def parse(rest: str, at: int) -> Term:
        return ConsentIs(_one_of(key, rest, at, channels).upper(), status.value)

    return parse


def _source(rest: str, at: int) -> Term:
    value = _unquote(rest, at, "source")
    if value.lower() == SourceKind.LOYALTY.value.lower():
        return SourceIs(kind=SourceKind.LOYALTY.value)
    if value.lower() == SourceKind.RAW_FILE.value.lower():
        return SourceIs(kind=SourceKind.RAW_FILE.value)
    return SourceIs(kind=SourceKind.INTEGRATION.value, name=value)


def _tag(rest: str, at: int) -> Term:
    return TagIs(_unquote(rest, at, "tag"))


def _attribute(rest: str, at: int) -> Term:
    split = _split_outside_quotes(rest, "=")
    if split is None:
        raise SearchSyntaxError("attr: needs KEY=VALUE, e.g. attr:tier=gold", at)
    key = _unquote(rest[:split], at, "attribute key")
    value = _unquote(rest[split + 1 :], at + split + 1, "attribute value")
    return AttributeIs(key, value)


def _split_outside_quotes(raw: str, char: str) -> int | None:
    quoted = False
    for i, ch in enumerate(raw):
        if ch == '"':
            quoted = not quoted
        elif ch == char and not quoted:
            return i
    return None


def _store(rest: str, at: int) -> Term:
    return StoreIs(_unquote(rest, at, "store name"))


_CONDITION_PARSERS: dict[str, Callable[[str, int], Term]] = {
    "has": _has,
    "is": _is,
    "opted_in": _consent(OptInStatus.OPTED_IN, "opted_in"),
    "opted_out": _consent(OptInStatus.OPTED_OUT, "opted_out"),
    "source": _source,
    "tag": _tag,
    "attr": _attribute,
    "store": _store,
}
