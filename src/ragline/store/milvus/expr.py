"""The filter grammar compiled to a Milvus boolean expression over the chunk's `meta` JSON.

Milvus evaluates a comparison on a missing JSON key as false and `not (...)` as its plain
negation, which is exactly `ragline.store.filters.matches`: `!=` and `not in` are compiled as
`not` of `==` and `in`. Values are never pasted in raw: strings are written as escaped literals
(a quote, a backslash or `or 1==1` inside a value stays inside the string), numbers always as
floats (Milvus rejects a list mixing int and float literals), field names are checked by the
grammar. Tests run every form against a real server and compare with `matches`.
"""

from __future__ import annotations

from collections.abc import Mapping

from ragline.store.filters import Comparison, Filter, Logical, Not, Scalar, check

#: expressions that are false / true for every stored chunk (ids start at 1)
FALSE = "(id < 0)"
TRUE = "(id >= 0)"
_SIMPLE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def string_literal(value: str) -> str:
    """A double-quoted Milvus string literal; raw UTF-8 except escapes for `\\`, `"` and
    control characters (Milvus's parser takes no `\\u` escapes)."""
    out = []
    for ch in value:
        if ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def literal(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value))  # always "1.0"/"1e+20": one numeric type per list
    return string_literal(value)


def _compile(f: Filter) -> str:
    if isinstance(f, Not):
        return f"(not {_compile(f.item)})"
    if isinstance(f, Logical):
        return "(" + f" {f.op} ".join(_compile(i) for i in f.items) + ")"
    return _comparison(f)


def _comparison(c: Comparison) -> str:
    target = f'meta["{c.field}"]'
    negated = c.op in ("!=", "not in")
    if c.op in ("in", "not in"):
        values = c.value if isinstance(c.value, tuple) else (c.value,)
        test = f"{target} in [{', '.join(literal(v) for v in values)}]" if values else FALSE
    else:
        assert not isinstance(c.value, tuple)
        op = "==" if c.op == "!=" else c.op
        test = f"{target} {op} {literal(c.value)}"
    return f"(not ({test}))" if negated else f"({test})"


def to_milvus(f: Filter, fields: Mapping[str, str]) -> str:
    """A Milvus expression selecting exactly what `matches` does (fields checked first)."""
    check(f, fields)
    return _compile(f)
