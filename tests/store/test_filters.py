"""The metadata filter grammar: parsing, checking, and SQL that agrees with `matches`."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from ragline.store.filters import (
    COMPARE_OPS,
    Comparison,
    Filter,
    FilterError,
    Logical,
    Not,
    check,
    describe,
    matches,
    parse_filter,
    to_sql,
)

FIELDS = {
    "type": "string", "year": "number", "draft": "boolean", "team": "string",
    "score": "number", "modified": "string", "title": "string",
}


def _parse(spec: Any) -> Filter:
    f = parse_filter(spec)
    assert f is not None
    return f


# ---------------------------------------------------------------- string grammar


@pytest.mark.parametrize("op", [op for op in COMPARE_OPS if op not in ("in", "not in")])
def test_every_comparison_operator_parses(op: str) -> None:
    assert parse_filter(f"year {op} 2020") == Comparison("year", op, 2020)


def test_in_and_not_in_take_bracket_or_paren_lists() -> None:
    assert parse_filter('team in ["legal", "hr"]') == Comparison("team", "in", ("legal", "hr"))
    assert parse_filter("year not in (2019, 2020,)") == Comparison("year", "not in", (2019, 2020))
    assert parse_filter("team NOT IN []") == Comparison("team", "not in", ())


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ('"pdf"', "pdf"),
        ("'pdf'", "pdf"),
        (r'"say \"hi\"\n\t\\ \u00e9"', 'say "hi"\n\t\\ é'),
        (r"'it\'s'", "it's"),
        ("42", 42),
        ("-7", -7),
        ("2.5", 2.5),
        ("-0.25", -0.25),
        ("1e3", 1000.0),
        ("2.5E-2", 0.025),
        ("true", True),
        ("FALSE", False),
    ],
)
def test_literals(literal: str, value: Any) -> None:
    c = _parse(f"x == {literal}")
    assert isinstance(c, Comparison)
    assert c.value == value and type(c.value) is type(value)


def test_precedence_not_over_and_over_or() -> None:
    a, b, c = (Comparison(n, "==", 1) for n in "abc")
    assert parse_filter("a == 1 or b == 2 and not c == 1") == Logical(
        "or", (a, Logical("and", (Comparison("b", "==", 2), Not(c))))
    )
    a_or_b = Logical("or", (a, b))
    assert parse_filter("(a == 1 or b == 1) and c == 1") == Logical("and", (a_or_b, c))
    assert parse_filter("not a == 1 and b == 1") == Logical("and", (Not(a), b))


def test_keywords_are_case_insensitive_and_chains_flatten() -> None:
    a, b, c = (Comparison(n, "==", 1) for n in "abc")
    assert parse_filter("a == 1 AND b == 1 And c == 1") == Logical("and", (a, b, c))
    assert parse_filter("a == 1 OR (b == 1 OR c == 1)") == Logical("or", (a, Logical("or", (b, c))))
    assert parse_filter("NOT NOT a == 1") == Not(Not(a))


def test_meta_prefix_is_stripped_and_escapes_keywords() -> None:
    assert parse_filter("meta.year >= 2020") == Comparison("year", ">=", 2020)
    f = _parse("meta.in == true")
    assert f == Comparison("in", "==", True)
    assert describe(f) == "meta.in == true"


def test_blank_and_none_mean_no_filter() -> None:
    assert parse_filter(None) is None
    assert parse_filter("   ") is None
    assert parse_filter({}) is None
    f = Comparison("a", "==", 1)
    assert parse_filter(f) is f


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("year >= and", "expected a value after '>='", 9),
        ("year >= ", "expected a value after '>='", 9),
        ("year = 2020", "unexpected '=' (use '==' to compare)", 6),
        ('type == "pdf', "unterminated string", 9),
        (r'type == "a\qb"', "unknown escape '\\q' in string", 11),
        ("(year > 1 or draft == true", "expected ')' to close '('", 27),
        ("year > 1 draft == true", "expected 'and', 'or' or the end of the filter", 10),
        ("year in 2020", "expected a list like [\"a\", \"b\"] after 'in'", 9),
        ("team in ['a' 'b']", "expected ',' or ']' in the list", 14),
        ("year not 2020", "expected 'in' after 'not'", 10),
        ("year 2020", "expected an operator after 'year'", 6),
        ("and == 1", "expected a field name or '('", 1),
        ("a.b == 1", "nested field 'a.b' is not supported", 1),
        ("x > 1 and y $ 2", "unexpected '$'", 13),
        ("x > 1e999", "number out of range", 5),
    ],
)
def test_syntax_errors_give_position_and_caret(text: str, message: str, position: int) -> None:
    with pytest.raises(FilterError) as info:
        parse_filter(text)
    assert info.value.position == position
    caret = " " * (position - 1) + "^"
    assert str(info.value) == f"filter: {message} at position {position}\n  {text}\n  {caret}"


def test_caret_points_into_the_right_line_of_a_multiline_filter() -> None:
    with pytest.raises(FilterError) as info:
        parse_filter('type == "pdf"\n  and year >=')
    assert info.value.position == 28
    assert str(info.value).endswith("\n    and year >=\n" + " " * 15 + "^")


# ---------------------------------------------------------------- dict forms


def test_haystack_comparison_and_logical_dicts() -> None:
    spec = {
        "operator": "AND",
        "conditions": [
            {"field": "meta.type", "operator": "==", "value": "pdf"},
            {"operator": "or", "conditions": [
                {"field": "meta.year", "operator": ">=", "value": 2020},
                {"field": "team", "operator": "NOT IN", "value": ["hr", "legal"]},
            ]},
        ],
    }
    assert parse_filter(spec) == Logical("and", (
        Comparison("type", "==", "pdf"),
        Logical("or", (Comparison("year", ">=", 2020),
                       Comparison("team", "not in", ("hr", "legal")))),
    ))


def test_haystack_not_over_several_conditions_is_not_of_and() -> None:
    a = {"field": "meta.a", "operator": "<", "value": 1}
    b = {"field": "meta.b", "operator": "!=", "value": "x"}
    assert parse_filter({"operator": "NOT", "conditions": [a, b]}) == Not(
        Logical("and", (Comparison("a", "<", 1), Comparison("b", "!=", "x")))
    )
    assert parse_filter({"operator": "not", "conditions": [a]}) == Not(Comparison("a", "<", 1))
    assert parse_filter({"operator": "OR", "conditions": [a]}) == Comparison("a", "<", 1)


def test_shorthand_mapping_is_and_of_equalities_and_ins() -> None:
    assert parse_filter({"team": "legal"}) == Comparison("team", "==", "legal")
    assert parse_filter({"team": ["legal", "hr"], "meta.year": 2024}) == Logical(
        "and", (Comparison("team", "in", ("legal", "hr")), Comparison("year", "==", 2024))
    )


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"field": "a", "operator": "like", "value": 1}, "unknown operator 'like' in 'operator'"),
        ({"operator": "AND", "conditions": [{"field": "a", "operator": "==", "value": 1},
                                            {"field": "b", "operator": "~", "value": 1}]},
         "'conditions[1].operator'"),
        ({"operator": "XOR", "conditions": [{"a": 1}]}, "unknown operator 'XOR' in 'operator'"),
        ({"field": "a", "operator": "=="}, "missing key 'value'"),
        ({"field": "a", "operator": "==", "value": 1, "extra": 2}, "unknown key 'extra'"),
        ({"operator": "OR", "conditions": []}, "'conditions' must be a non-empty list"),
        ({"operator": "OR", "conditions": ["a == 1"]}, "'conditions[0]' must be a non-empty"),
        ({"field": "a", "operator": "in", "value": "x"}, "'value' must be a list for 'in'"),
        ({"field": "a", "operator": "==", "value": None}, "unsupported value None in 'value'"),
        ({"field": "meta.a.b", "operator": "==", "value": 1}, "invalid field name 'meta.a.b'"),
        ({"team": {"name": "x"}}, "unsupported value {'name': 'x'} in 'team'"),
        ({"bad-name": 1}, "invalid field name 'bad-name' in 'bad-name'"),
    ],
)
def test_bad_dicts_name_the_bad_key(spec: dict[str, Any], fragment: str) -> None:
    with pytest.raises(FilterError, match="^filter: ") as info:
        parse_filter(spec)
    assert fragment in str(info.value)


def test_wrong_spec_type_and_invalid_ast_nodes_are_refused() -> None:
    with pytest.raises(FilterError, match="expected a string or a mapping"):
        parse_filter(42)  # type: ignore[arg-type]
    with pytest.raises(FilterError, match="invalid field name"):
        Comparison("x'; drop table t; --", "==", 1)
    with pytest.raises(FilterError, match="unknown operator 'like'"):
        Comparison("x", "like", "a%")
    with pytest.raises(FilterError, match="needs a list"):
        Comparison("x", "in", 1)
    with pytest.raises(FilterError, match="unsupported value"):
        Comparison("x", "==", float("nan"))
    with pytest.raises(FilterError, match="two or more"):
        Logical("and", (Comparison("x", "==", 1),))


# ---------------------------------------------------------------- check


def test_unknown_field_lists_the_known_ones_sorted() -> None:
    fields = {"year": "number", "type": "string", "title": "string", "source": "string",
              "modified": "string"}
    with pytest.raises(FilterError) as info:
        check(_parse('type == "pdf" and yeer > 2020'), fields)
    assert str(info.value) == (
        "unknown field 'yeer' in filter; known fields: modified, source, title, type, year"
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('year >= "2020"', "field 'year' is a number, but the filter compares it with the "
                           'string "2020"'),
        ("draft == 1", "field 'draft' is a boolean, but the filter compares it with the number 1"),
        ("year == true", "field 'year' is a number, but the filter compares it with the boolean"),
        ("type != false", "field 'type' is a string, but the filter compares it with the boolean"),
        ('team in ["hr", 3]', "field 'team' is a string, but the filter compares it with the "
                              "number 3"),
        ("draft > false", "field 'draft' is a boolean; '>' does not apply"),
    ],
)
def test_type_mismatches_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(FilterError) as info:
        check(_parse(text), FIELDS)
    assert fragment in str(info.value)


def test_well_typed_filters_pass_check() -> None:
    check(_parse('modified >= "2020-01-01" and year < 2020.5 and draft != true and '
                 'score in [1, 2.5]'), FIELDS)


# ---------------------------------------------------------------- matches vs SQLite

RECORDS: list[dict[str, Any]] = [
    {"type": "pdf", "year": 2020, "draft": False, "team": "legal", "score": 0.5,
     "modified": "2020-01-15"},
    {"type": "pdf", "year": 2021, "draft": True, "team": "hr", "score": 1.5,
     "modified": "2021-06-01"},
    {"type": "html", "year": 2019, "team": "eng", "modified": "2019-12-31T23:59:59"},
    {"type": "md", "year": 2024, "draft": False, "score": -2},
    {"type": "pdf"},
    {},
    {"year": "2020", "type": 3},  # wrong JSON types
    {"draft": "true", "team": "legal"},
    {"draft": 1, "year": True},
    {"team": ["legal", "hr"]},  # a list is not a string
    {"team": None, "year": None, "draft": None},  # JSON null = missing
    {"type": "PDF", "year": 2020.0},
    {"type": "pdf", "year": 2022.5, "score": 0},
    {"type": "docx", "year": 2023, "draft": True, "team": "eng", "title": "Ünïcode"},
    {"type": "txt", "year": -5, "title": "O'Brien \"quoted\""},
    {"title": "zeta", "year": 1e3},
    {"title": "Alpha"},
    {"title": "alpha", "draft": False},
    {"type": "", "year": 0, "draft": False},
    {"team": "hr", "year": 2020, "draft": False, "type": "html"},
    {"team": {"name": "legal"}},
    {"score": 3.25, "modified": "2024-02-29"},
    {"type": "pdf", "year": 2020, "draft": True, "team": "legal"},
    {"type": "html", "year": 2025, "team": "Legal", "score": 1},
    {"type": "pdf", "year": 2019.999, "draft": False, "modified": "2022"},
    {"score": -0.0, "team": ""},
    {"type": "md", "draft": True, "title": "ßharp"},
    {"year": 10**12, "type": "pdf"},
    {"type": "pdf", "year": 2021, "team": "hr", "modified": "2021-06-01T00:00:00"},
    {"title": "z", "score": 1e-9},
]

FILTERS = [
    'type == "pdf"',
    'type != "pdf"',
    "year >= 2020",
    "year > 2020",
    "year < 2020",
    "year <= 2020.0",
    "year == 2020",
    "year != 2020",
    "draft == true",
    "draft != true",
    "draft == false",
    'team in ["legal", "hr"]',
    'team not in ["legal", "hr"]',
    "year in [2019, 2024, -5, 1e3]",
    "year not in (2020)",
    'type == "pdf" and year >= 2020',
    'type == "pdf" or draft == true',
    'not (team in ["legal", "hr"] or draft == true)',
    "not year > 2020",
    'not not type == "pdf"',
    'modified >= "2020-01-01" and modified < "2022"',
    'title > "alpha" or title < "B"',
    "score <= 0 or score > 1",
    "team in [] or team not in []",
    '(type == "pdf" or type == "html") and not draft == true and year != 2021',
    "title == 'O\\'Brien \"quoted\"' or type == \"\"",
    "draft in [true] and draft not in [false]",
    'not (year >= 2020 and year < 2022) or team == "eng"',
]


@pytest.fixture(scope="module")
def db() -> sqlite3.Connection:
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE docs (id INTEGER, meta TEXT)")
    con.executemany("INSERT INTO docs VALUES (?, ?)",
                    [(i, json.dumps(r)) for i, r in enumerate(RECORDS)])
    con.execute("INSERT INTO docs VALUES (?, NULL)", (len(RECORDS),))  # no metadata at all
    return con


def _sqlite_ids(con: sqlite3.Connection, f: Filter) -> set[int]:
    sql, params = to_sql(f, FIELDS, "sqlite")
    return {row[0] for row in con.execute(f"SELECT id FROM docs WHERE {sql}", params)}


def _python_ids(f: Filter) -> set[int]:
    ids = {i for i, r in enumerate(RECORDS) if matches(f, r)}
    return ids | ({len(RECORDS)} if matches(f, {}) else set())


@pytest.mark.parametrize("text", FILTERS)
def test_sqlite_selects_exactly_what_matches_selects(db: sqlite3.Connection, text: str) -> None:
    f = _parse(text)
    assert _sqlite_ids(db, f) == _python_ids(f)
    # NOT over the whole filter is the complement: the SQL is never NULL
    assert _sqlite_ids(db, Not(f)) == set(range(len(RECORDS) + 1)) - _python_ids(f)


def test_the_property_filters_discriminate() -> None:
    """Guards the property test itself: filters that all selected everything would prove little."""
    results = [frozenset(_python_ids(_parse(t))) for t in FILTERS]
    assert len(set(results)) >= 0.8 * len(FILTERS)
    assert sum(1 for r in results if 0 < len(r) < len(RECORDS)) == len(FILTERS) - 1


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("year == 2020", {0, 11, 19, 22}),
        ("year != 2020", set(range(31)) - {0, 11, 19, 22}),
        ('team in ["legal", "hr"]', {0, 1, 7, 19, 22, 28}),
        ("draft == false", {0, 3, 17, 18, 19, 24}),
        ('title > "alpha" or title < "B"', {13, 15, 16, 26, 29}),
    ],
)
def test_matches_reference_semantics(text: str, ids: set[int]) -> None:
    assert _python_ids(_parse(text)) == ids


def test_values_never_enter_the_sql_text(db: sqlite3.Connection) -> None:
    evil = "x'); DROP TABLE docs; --"
    sql, params = to_sql(Comparison("title", "==", evil), FIELDS, "sqlite")
    assert evil not in sql and params == [evil]
    assert _sqlite_ids(db, Comparison("title", "!=", evil)) == set(range(len(RECORDS) + 1))
    assert db.execute("SELECT count(*) FROM docs").fetchone() == (len(RECORDS) + 1,)


def test_sqlite_sql_shape_and_boolean_params() -> None:
    sql, params = to_sql(_parse("draft == true and year in [1, 2]"), FIELDS, "sqlite", "d.meta")
    assert sql == (
        "((CASE WHEN json_type(d.meta, '$.\"draft\"') IN ('true', 'false') "
        "THEN json_extract(d.meta, '$.\"draft\"') = ? ELSE 0 END) AND "
        "(CASE WHEN json_type(d.meta, '$.\"year\"') IN ('integer', 'real') "
        "THEN json_extract(d.meta, '$.\"year\"') IN (?, ?) ELSE 0 END))"
    )
    assert params == [1, 1, 2] and type(params[0]) is int


def test_to_sql_checks_fields_dialect_and_column() -> None:
    with pytest.raises(FilterError, match="unknown field 'yeer'"):
        to_sql(_parse("yeer > 1"), FIELDS, "sqlite")
    with pytest.raises(ValueError, match="dialect"):
        to_sql(_parse("year > 1"), FIELDS, "mysql")
    with pytest.raises(ValueError, match="column"):
        to_sql(_parse("year > 1"), FIELDS, "sqlite", column="meta; --")


# ---------------------------------------------------------------- postgres text


def test_postgres_sql_for_a_comparison_and_a_string_ordering() -> None:
    sql, params = to_sql(_parse('year >= 2020 or title < "b"'), FIELDS, "postgres")
    assert sql == (
        "((CASE WHEN jsonb_typeof(meta->'year') = 'number' "
        "THEN (meta->>'year')::double precision >= %s ELSE FALSE END) OR "
        "(CASE WHEN jsonb_typeof(meta->'title') = 'string' "
        "THEN (meta->>'title') COLLATE \"C\" < %s ELSE FALSE END))"
    )
    assert params == [2020.0, "b"]


def test_postgres_sql_for_not_in_and_booleans() -> None:
    sql, params = to_sql(_parse('not (team not in ["legal", "hr"] and draft == true)'),
                         FIELDS, "postgres", "c.meta")
    assert sql == (
        "NOT ((CASE WHEN jsonb_typeof(c.meta->'team') = 'string' "
        "THEN NOT ((c.meta->>'team') = ANY(%s::text[])) ELSE TRUE END) AND "
        "(CASE WHEN jsonb_typeof(c.meta->'draft') = 'boolean' "
        "THEN (c.meta->>'draft')::boolean = %s ELSE FALSE END))"
    )
    assert params == [["legal", "hr"], True] and params[1] is True


# ---------------------------------------------------------------- describe


@pytest.mark.parametrize("text", FILTERS)
def test_describe_round_trips(text: str) -> None:
    f = _parse(text)
    assert parse_filter(describe(f)) == f
    assert describe(_parse(describe(f))) == describe(f)


def test_describe_keeps_structure_and_tricky_literals() -> None:
    a, b = Comparison("a", "==", 'q"\\\n\x01é'), Comparison("b", ">", 1e16)
    f = Logical("and", (Logical("and", (a, b)), Not(Not(Comparison("c", "in", (-0.5, True))))))
    text = describe(f)
    assert text == '(a == "q\\"\\\\\\n\\u0001é" and b > 1e+16) and not (not (c in [-0.5, true]))'
    assert parse_filter(text) == f
