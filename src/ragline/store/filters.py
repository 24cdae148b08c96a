"""One metadata filter grammar for every storage backend.

A filter is parsed once (from a string, a Haystack-style dict or a shorthand mapping) into a
small AST. `matches` is the reference semantics; `to_sql` selects exactly the same records, so
a filter means the same thing whichever store runs it.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from ragline.errors import RaglineError

Scalar: TypeAlias = str | int | float | bool
COMPARE_OPS = ("==", "!=", ">", ">=", "<", "<=", "in", "not in")
FIELD_TYPES = ("string", "number", "boolean")
#: a metadata field name, as the grammar reads it and as ingest accepts it
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?\Z")
_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false"})
_ORDERING = frozenset({">", ">=", "<", "<="})
_POSITIVE = {"!=": "==", "not in": "in"}  # negated ops are exactly NOT of these
_PY_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}


class FilterError(RaglineError):
    """A filter that cannot be parsed or does not fit the fields; `position` is 1-based."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


def _kind(value: object) -> str | None:
    """The filter type of a value; bool is tested first because it is an int subclass."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number" if math.isfinite(value) else None
    return "string" if isinstance(value, str) else None


@dataclass(frozen=True)
class Comparison:
    """`field op value`; for `in` / `not in` the value is a tuple of scalars."""

    field: str
    op: str
    value: Scalar | tuple[Scalar, ...]

    def __post_init__(self) -> None:  # validated here so that SQL text can trust the field
        if not isinstance(self.field, str) or not FIELD_NAME.match(self.field):
            raise FilterError(f"filter: invalid field name {self.field!r}")
        if self.op not in COMPARE_OPS:
            raise FilterError(f"filter: unknown operator {self.op!r}; use {', '.join(COMPARE_OPS)}")
        if self.op in ("in", "not in") and isinstance(self.value, list):
            object.__setattr__(self, "value", tuple(self.value))
        if isinstance(self.value, tuple) != (self.op in ("in", "not in")):
            raise FilterError(f"filter: {self.field} {self.op} needs "
                              f"{'a list' if self.op in ('in', 'not in') else 'one value'}")
        if not all(_kind(v) for v in _values(self)):
            raise FilterError(f"filter: unsupported value {self.value!r} for {self.field!r}")


@dataclass(frozen=True)
class Logical:
    """`and` / `or` over two or more filters (one operand would not survive `describe`)."""

    op: Literal["and", "or"]
    items: tuple[Filter, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(self.items))
        if self.op not in ("and", "or") or len(self.items) < 2:
            raise FilterError(f"filter: {self.op!r} needs 'and' or 'or' and two or more operands")


@dataclass(frozen=True)
class Not:
    """Boolean negation; comparisons are never NULL, so this is plain `not` in SQL too."""

    item: Filter


Filter: TypeAlias = Comparison | Logical | Not


def _values(c: Comparison) -> tuple[Scalar, ...]:
    return c.value if isinstance(c.value, tuple) else (c.value,)


# ---------------------------------------------------------------- string grammar

_TOKEN = re.compile(
    r"\s*(?:(?P<str>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')|(?P<quote>[\"'])"
    r"|(?P<num>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
    r"|(?P<op>==|!=|>=|<=|>|<)|(?P<punct>[()\[\],])|(?P<bad>.)|(?P<end>\Z))",
    re.DOTALL,
)
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n",
            "r": "\r", "t": "\t"}


def _error(text: str, message: str, index: int) -> FilterError:
    """Message with the 1-based position and a caret under the offending character."""
    start, end = text.rfind("\n", 0, index) + 1, text.find("\n", index)
    line = text[start : len(text) if end < 0 else end].replace("\t", " ")
    caret = " " * (index - start) + "^"
    return FilterError(f"filter: {message} at position {index + 1}\n  {line}\n  {caret}", index + 1)


class _Parser:
    """Recursive descent: or > and > not > comparison, so not binds tighter than and > or."""

    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0
        self.kind, self.tok, self.start = self._scan()

    def _scan(self) -> tuple[str, str, int]:
        m = _TOKEN.match(self.text, self.pos)
        assert m is not None and m.lastgroup is not None  # `bad` and `end` catch everything
        self.pos, start, kind = m.end(), m.start(m.lastgroup), m.lastgroup
        if kind in ("quote", "bad"):
            what = "unterminated string" if kind == "quote" else f"unexpected {m[kind]!r}"
            hint = " (use '==' to compare)" if m[kind] == "=" else ""
            raise _error(self.text, what + hint, start)
        return kind, m[kind], start

    def advance(self) -> tuple[str, str, int]:
        current = (self.kind, self.tok, self.start)
        if self.kind != "end":
            self.kind, self.tok, self.start = self._scan()
        return current

    def at(self, kind: str, *texts: str) -> bool:
        return self.kind == kind and (not texts or self.tok.lower() in texts)

    def fail(self, message: str) -> FilterError:
        return _error(self.text, message, self.start)

    def parse(self) -> Filter:
        f = self.binary("or")
        if self.kind != "end":
            raise self.fail("expected 'and', 'or' or the end of the filter")
        return f

    def binary(self, op: Literal["and", "or"]) -> Filter:
        lower: Callable[[], Filter] = (lambda: self.binary("and")) if op == "or" else self.negation
        items = [lower()]
        while self.at("name", op):
            self.advance()
            items.append(lower())
        return items[0] if len(items) == 1 else Logical(op, tuple(items))

    def negation(self) -> Filter:
        if self.at("name", "not"):
            self.advance()
            return Not(self.negation())
        if self.at("punct", "("):
            self.advance()
            f = self.binary("or")
            if not self.at("punct", ")"):
                raise self.fail("expected ')' to close '('")
            self.advance()
            return f
        if not self.at("name") or self.tok.lower() in _KEYWORDS:
            raise self.fail("expected a field name or '('")
        raw, start = self.tok, self.advance()[2]
        field = raw[5:] if raw.startswith("meta.") else raw
        if not FIELD_NAME.match(field):
            raise _error(self.text, f"nested field {raw!r} is not supported", start)
        if self.at("op"):
            op = self.advance()[1]
            return Comparison(field, op, self.literal(op))
        if self.at("name", "not"):
            self.advance()
            if not self.at("name", "in"):
                raise self.fail("expected 'in' after 'not'")
            op = "not in"
        elif self.at("name", "in"):
            op = "in"
        else:
            raise self.fail(f"expected an operator after {raw!r}")
        self.advance()
        return Comparison(field, op, self.values(op))

    def values(self, op: str) -> tuple[Scalar, ...]:
        if not self.at("punct", "[", "("):
            raise self.fail(f"expected a list like [\"a\", \"b\"] after {op!r}")
        after = self.advance()[1]
        close, items = "]" if after == "[" else ")", []
        while not self.at("punct", close):
            items.append(self.literal(after))
            if self.at("punct", ","):
                after = self.advance()[1]
            elif not self.at("punct", close):
                raise self.fail(f"expected ',' or '{close}' in the list")
        self.advance()
        return tuple(items)

    def literal(self, after: str) -> Scalar:
        kind, tok, start = self.kind, self.tok, self.start
        if kind == "str":
            self.advance()
            return re.sub(r"\\(u[0-9A-Fa-f]{4}|.)", lambda m: self._unescape(m, start), tok[1:-1],
                          flags=re.DOTALL)
        if kind == "num":
            self.advance()
            if not any(c in tok for c in ".eE"):
                return int(tok)
            if not math.isfinite(number := float(tok)):
                raise _error(self.text, "number out of range", start)
            return number
        if kind == "name" and tok.lower() in ("true", "false"):
            self.advance()
            return tok.lower() == "true"
        raise self.fail(f"expected a value after {after!r}")

    def _unescape(self, m: re.Match[str], start: int) -> str:
        esc = m[1]
        if len(esc) == 5:
            return chr(int(esc[1:], 16))
        if esc not in _ESCAPES:
            raise _error(self.text, f"unknown escape '\\{esc}' in string", start + 1 + m.start())
        return _ESCAPES[esc]


# ---------------------------------------------------------------- mappings


def _scalar(value: Any, where: str) -> Scalar:
    """Only JSON scalars: null, lists and objects have no agreed meaning across stores."""
    if _kind(value) is None:
        raise FilterError(f"filter: unsupported value {value!r} in '{where}'")
    return value  # type: ignore[no-any-return]


def _comparison(raw: Any, op: str, value: Any, fkey: str, vkey: str) -> Comparison:
    name = raw[5:] if isinstance(raw, str) and raw.startswith("meta.") else raw
    if not isinstance(name, str) or not FIELD_NAME.match(name):
        raise FilterError(f"filter: invalid field name {raw!r} in '{fkey}'")
    if op in ("in", "not in"):
        if not isinstance(value, (list, tuple)):
            raise FilterError(f"filter: '{vkey}' must be a list for {op!r}, got {value!r}")
        return Comparison(name, op, tuple(_scalar(v, vkey) for v in value))
    return Comparison(name, op, _scalar(value, vkey))


def _from_mapping(spec: Mapping[Any, Any], where: str) -> Filter | None:
    """Haystack 2.x dicts, or the shorthand {field: value-or-list} = AND of equalities/`in`s."""
    if "operator" not in spec:
        pairs: list[Filter] = [
            _comparison(k, "in" if isinstance(v, (list, tuple)) else "==", v, where + str(k),
                        where + str(k)) for k, v in spec.items()]
        return None if not pairs else pairs[0] if len(pairs) == 1 else Logical("and", tuple(pairs))
    op, logical = spec["operator"], "conditions" in spec
    allowed = ("operator", "conditions") if logical else ("field", "operator", "value")
    for key in [k for k in spec if k not in allowed] + [k for k in allowed if k not in spec]:
        state = "unknown" if key in spec else "missing"
        raise FilterError(f"filter: {state} key '{where}{key}'; a "
                          f"{'logical' if logical else 'comparison'} has {', '.join(allowed)}")
    word = op.lower() if isinstance(op, str) else op
    if not logical:
        if word not in COMPARE_OPS:
            raise FilterError(f"filter: unknown operator {op!r} in '{where}operator'; "
                              f"use {', '.join(COMPARE_OPS)}")
        return _comparison(spec["field"], word, spec["value"], where + "field", where + "value")
    if word not in ("and", "or", "not"):
        raise FilterError(f"filter: unknown operator {op!r} in '{where}operator'; "
                          "use AND, OR or NOT")
    conds = spec["conditions"]
    if not isinstance(conds, (list, tuple)) or not conds:
        raise FilterError(f"filter: '{where}conditions' must be a non-empty list")
    items: list[Filter] = []
    for i, c in enumerate(conds):
        f = _from_mapping(c, f"{where}conditions[{i}].") if isinstance(c, Mapping) else None
        if f is None:
            raise FilterError(f"filter: '{where}conditions[{i}]' must be a non-empty mapping")
        items.append(f)
    one = items[0] if len(items) == 1 else Logical("or" if word == "or" else "and", tuple(items))
    return Not(one) if word == "not" else one


def parse_filter(spec: str | Mapping[str, Any] | Filter | None) -> Filter | None:
    """Any accepted form -> AST; None, a blank string or an empty mapping mean no filter."""
    if spec is None or isinstance(spec, (Comparison, Logical, Not)):
        return spec
    if isinstance(spec, str):
        return _Parser(spec).parse() if spec.strip() else None
    if isinstance(spec, Mapping):
        return _from_mapping(spec, "")
    raise FilterError(f"filter: expected a string or a mapping, got {type(spec).__name__}")


# ---------------------------------------------------------------- checking and evaluation


def _comparisons(f: Filter) -> Iterator[Comparison]:
    if isinstance(f, Comparison):
        yield f
    for item in f.items if isinstance(f, Logical) else (f.item,) if isinstance(f, Not) else ():
        yield from _comparisons(item)


def check(f: Filter, fields: Mapping[str, str]) -> None:
    """Refuse unknown fields and values of the wrong type before any store sees the filter."""
    for c in _comparisons(f):
        if c.field not in fields:
            known = ", ".join(sorted(fields)) or "(none)"
            raise FilterError(f"unknown field {c.field!r} in filter; known fields: {known}")
        ftype = fields[c.field]
        if ftype not in FIELD_TYPES:
            raise FilterError(f"filter: field {c.field!r} has unknown type {ftype!r}")
        if ftype == "boolean" and c.op in _ORDERING:
            raise FilterError(f"filter: field {c.field!r} is a boolean; {c.op!r} does not apply "
                              "(use == or !=)")
        for v in _values(c):
            if _kind(v) != ftype:
                raise FilterError(f"filter: field {c.field!r} is a {ftype}, but the filter "
                                  f"compares it with the {_kind(v)} {_literal(v)}")


def matches(f: Filter, meta: Mapping[str, Any]) -> bool:
    """Reference semantics: a missing field, or a value of another type, never satisfies the
    positive form (==, in, orderings); != and `not in` are exactly its negation."""
    if isinstance(f, Not):
        return not matches(f.item, meta)
    if isinstance(f, Logical):
        results = (matches(i, meta) for i in f.items)
        return all(results) if f.op == "and" else any(results)
    actual = meta.get(f.field)
    kind, op = _kind(actual), _POSITIVE.get(f.op, f.op)
    if op == "in":
        hit = any(_kind(v) == kind and actual == v for v in _values(f))
    else:
        hit = kind is not None and _kind(f.value) == kind and _PY_OPS[op](actual, f.value)
    return hit != (f.op in _POSITIVE)


# ---------------------------------------------------------------- SQL

_SQLITE_TYPES = {"string": "'text'", "number": "'integer', 'real'", "boolean": "'true', 'false'"}
_PG_CASTS = {"string": "", "number": "::double precision", "boolean": "::boolean"}
_PG_ARRAYS = {"string": "text[]", "number": "double precision[]", "boolean": "boolean[]"}


def _sql(f: Filter, fields: Mapping[str, str], dialect: str, col: str, params: list[Any]) -> str:
    if isinstance(f, Not):
        return f"NOT {_sql(f.item, fields, dialect, col, params)}"
    if isinstance(f, Logical):
        joiner = f" {f.op.upper()} "
        return "(" + joiner.join(_sql(i, fields, dialect, col, params) for i in f.items) + ")"
    ftype, op, negated = fields[f.field], _POSITIVE.get(f.op, f.op), f.op in _POSITIVE
    if dialect == "sqlite":  # JSON text; json_extract gives booleans back as 1/0
        path = f"'$.\"{f.field}\"'"
        guard = f"json_type({col}, {path}) IN ({_SQLITE_TYPES[ftype]})"
        expr, mark, otherwise = f"json_extract({col}, {path})", "?", "1" if negated else "0"
        values: list[Any] = [int(v) if isinstance(v, bool) else v for v in _values(f)]
    else:  # jsonb, psycopg 3 placeholders
        guard = f"jsonb_typeof({col}->'{f.field}') = '{ftype}'"
        expr, mark = f"({col}->>'{f.field}'){_PG_CASTS[ftype]}", "%s"
        otherwise = "TRUE" if negated else "FALSE"
        values = [float(v) if ftype == "number" else v for v in _values(f)]
        if ftype == "string" and op in _ORDERING:  # byte order = Python's code point order
            expr += ' COLLATE "C"'
    if op != "in":
        test = f"{expr} {'=' if op == '==' else op} {mark}"
        params.append(values[0])
    elif dialect == "sqlite":
        test = f"{expr} IN ({', '.join('?' * len(values))})" if values else "0"
        params.extend(values)
    else:
        test = f"{expr} = ANY(%s::{_PG_ARRAYS[ftype]})"
        params.append(values)
    test = f"NOT ({test})" if negated else test
    # The guard keeps the JSON type equal to the field's, and the result is never NULL.
    return f"(CASE WHEN {guard} THEN {test} ELSE {otherwise} END)"


def to_sql(
    f: Filter, fields: Mapping[str, str], dialect: str, column: str = "meta"
) -> tuple[str, list[Any]]:
    """A never-NULL SQL condition over a JSON column that selects exactly what `matches` does."""
    if dialect not in ("sqlite", "postgres"):
        raise ValueError(f"unknown SQL dialect {dialect!r}; use 'sqlite' or 'postgres'")
    if not _COLUMN.match(column):
        raise ValueError(f"invalid column name {column!r}")
    check(f, fields)
    params: list[Any] = []
    return _sql(f, fields, dialect, column, params), params


# ---------------------------------------------------------------- rendering


def _literal(v: Scalar) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v, ensure_ascii=False) if isinstance(v, str) else repr(v)


def describe(f: Filter) -> str:
    """Render in the string grammar, for messages and logs; `parse_filter(describe(f)) == f`."""
    if isinstance(f, Not):
        return f"not ({describe(f.item)})"
    if isinstance(f, Logical):
        parts = (f"({describe(i)})" if isinstance(i, Logical) else describe(i) for i in f.items)
        return f" {f.op} ".join(parts)
    name = f"meta.{f.field}" if f.field.lower() in _KEYWORDS else f.field
    if isinstance(f.value, tuple):
        return f"{name} {f.op} [{', '.join(_literal(v) for v in f.value)}]"
    return f"{name} {f.op} {_literal(f.value)}"
