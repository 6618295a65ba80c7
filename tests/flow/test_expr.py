"""The expression language of JSON flows: every element, every error kind, the sandbox."""

from __future__ import annotations

import contextlib
import dataclasses
import string
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from durable.errors import ExpressionError
from durable.flow._expr import Value, compile_expression, compile_value, is_template

VARIABLES: dict[str, Any] = {
    "creditScore": 720,
    "amount": 1500.5,
    "name": "Ada",
    "approved": True,
    "nothing": None,
    "user": {"roles": ["ADMIN", "OPS"], "items": 3, "keys": "k", "profile": {"age": 41}},
    "result": {"score": 0.9, "null": "n", "true": "t"},
    "tags": ["a", "b"],
}


def evaluate(source: str, variables: dict[str, Any] | None = None) -> Any:
    return compile_expression(source).evaluate(VARIABLES if variables is None else variables)


def failure(source: str, variables: dict[str, Any] | None = None) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        evaluate(source, variables)
    return caught.value


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # variables in the three styles, mixed freely
        ("creditScore", 720),
        ("#creditScore", 720),
        ("${creditScore}", 720),
        ("${creditScore} > 700 && #name == 'Ada' && approved", True),
        ("${creditScore + #amount} > 2000", True),
        ("${user.items} + #user.items + user.items", 9),
        # nested fields are mapping keys, even when a dict method has that name
        ("result.score", 0.9),
        ("user.items", 3),
        ("user.keys", "k"),
        ("user.profile.age", 41),
        ("result.null", "n"),
        ("result.true", "t"),
        # literals
        ("700", 700),
        ("-1", -1),
        ("0.9", 0.9),
        ("true", True),
        ("false", False),
        ("null", None),
        ("'text'", "text"),
        ('"text"', "text"),
        (r"'it\'s'", "it's"),
        # comparisons
        ("creditScore == 720", True),
        ("creditScore != 720", False),
        ("creditScore > 719", True),
        ("creditScore >= 721", False),
        ("creditScore < 721", True),
        ("creditScore <= 719", False),
        ("name < 'Bob'", True),
        ("nothing == null", True),
        ("1 == 1.0", True),
        ("700 < creditScore < 800", True),
        # arithmetic
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("7 / 2", 3.5),
        ("7 % 4", 3),
        ("-creditScore", -720),
        ("'a' + 'b'", "ab"),
        ("tags + tags", ["a", "b", "a", "b"]),
        # boolean logic, both spellings
        ("true && false", False),
        ("true || false", True),
        ("!approved", False),
        ("!(creditScore > 700) || name == 'Ada'", True),
        ("true and not false", True),
        ("false or (true and true)", True),
        ("nothing != null && nothing.score > 1", False),  # short-circuits
        ("nothing == null || nothing.score > 1", True),
        # membership and built-ins
        ("'ADMIN' in user.roles", True),
        ("'ROOT' in user.roles", False),
        ("'ROOT' not in user.roles", True),
        ("'d' in name", True),
        ("'items' in user", True),
        ("contains(user.roles, 'OPS')", True),
        ("contains(tags, 'z')", False),
        ("len(user.roles)", 2),
        ("len(name)", 3),
        ("len(user)", 4),
        # operators and markers inside string literals are text
        ("'a && b'", "a && b"),
        ("\"x || !y\" == 'x || !y'", True),
        ("'#name ${name} true null'", "#name ${name} true null"),
        ("'!=' != '!'", True),
        # blanks, tabs and newlines between tokens
        ("  creditScore\n>\t700 ", True),
    ],
)
def test_expression_elements(source: str, expected: Any) -> None:
    result = evaluate(source)
    assert result == expected and type(result) is type(expected)


def test_compiled_expression_is_reusable_and_immutable() -> None:
    expression = compile_expression("#a * 2 > limit")
    assert expression.evaluate_bool({"a": 3, "limit": 5}) is True
    assert expression.evaluate_bool({"a": 1, "limit": 5}) is False
    assert expression.source == "#a * 2 > limit"
    assert expression.references == frozenset({"a", "limit"})
    assert compile_expression("#a * 2 > limit") == expression
    with pytest.raises(dataclasses.FrozenInstanceError):
        expression.source = "x"  # type: ignore[misc]


def test_references_are_top_level_names_only() -> None:
    expression = compile_expression("len(${user.roles}) > 1 && contains(#tags, x.y) || !flag")
    assert expression.references == frozenset({"user", "tags", "x", "flag"})


def test_evaluation_from_many_threads() -> None:
    expression = compile_expression("n * 2 + len(items)")

    def run(n: int) -> int:
        result: int = expression.evaluate({"n": n, "items": list(range(n % 7))})
        return result

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, range(2000)))
    assert results == [n * 2 + n % 7 for n in range(2000)]


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("missing > 1", "undefined variable 'missing'"),
        ("user.items2", "undefined variable 'user.items2'"),
        ("user.profile.height > 1", "undefined variable 'user.profile.height'"),
        ("#ghost && true", "undefined variable 'ghost'"),
        ("${ghost}", "undefined variable 'ghost'"),
        ("open", "undefined variable 'open'"),
        ("true_", "undefined variable 'true_'"),
    ],
)
def test_undefined_names_are_reported(source: str, needle: str) -> None:
    error = failure(source)
    assert error.kind == "undefined"
    assert needle in str(error) and error.expression == source


@pytest.mark.parametrize(
    ("source", "column"),
    [
        ("creditScore >< 700", 14),
        ("x && y )", 8),
        ("${a} && (b", 9),
        ("${a", 1),
        ("a == ", 6),
        ("#", 1),
        ("x || # y", 6),
        ("'unterminated", 1),
        ("'é' == 'é' 'x' ==", 18),
        ("a = 1", 3),
        ("${}", 1),
        ("", 1),
        ("   ", 1),
    ],
)
def test_syntax_errors_give_the_column_in_the_original_text(source: str, column: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source)
    assert caught.value.kind == "syntax"
    assert f"column {column} " in str(caught.value)


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("name > 1", "cannot compare string with number using '>'"),
        ("nothing < 1", "cannot compare null with number"),
        ("len(5)", "len() needs a string, list or object, got number"),
        ("1 && true", "'&&' needs booleans, got number"),
        ("approved && 'yes'", "'&&' needs booleans, got string"),
        ("!approved || 0", "'||' needs booleans, got number"),
        ("!creditScore", "'!' cannot take a number"),
        ("-name", "'-' cannot take a string"),
        ("'x' * 3", "'*' needs numbers, got string and number"),
        ("tags * 2", "'*' needs numbers"),
        ("approved + 1", "cannot add boolean and number"),
        ("name + 1", "cannot add string and number"),
        ("user.roles.first", "cannot read field 'first' of a list"),
        ("1 in 5", "'in' needs a list, string or object, got number"),
        ("1 in name", "'in' a string needs a string, got number"),
        ("contains(user, tags)", "a list cannot be a key"),
    ],
)
def test_type_errors(source: str, needle: str) -> None:
    error = failure(source)
    assert error.kind == "type"
    assert needle in str(error) and source in str(error)


@pytest.mark.parametrize(
    "source", ["creditScore / 0", "1.5 / 0.0", "creditScore % 0", "1 / (2 - 2)"]
)
def test_division_by_zero(source: str) -> None:
    error = failure(source)
    assert error.kind == "division" and "by zero" in str(error)


def test_non_boolean_decision_result() -> None:
    expression = compile_expression("creditScore + 1")
    with pytest.raises(ExpressionError) as caught:
        expression.evaluate_bool(VARIABLES)
    assert caught.value.kind == "boolean"
    assert "'creditScore + 1'" in str(caught.value) and "number" in str(caught.value)
    with pytest.raises(ExpressionError, match="got null"):
        compile_expression("nothing").evaluate_bool(VARIABLES)


@pytest.mark.parametrize(
    "source",
    [
        "open('/etc/passwd')",
        "__import__('os')",
        "eval('1')",
        "getattr(user, 'x')",
        "int('5')",
        "rand()",
        "name.upper()",
        "len(x=1)",
        "len(a, b)",
        "contains(a)",
        "().__class__",
        "len.__self__",
        "x._private",
        "user.__class__.__mro__",
        "name.__len__",
        "2 ** 10",
        "7 // 2",
        "1 & 2",
        "1 | 2",
        "1 ^ 2",
        "~1",
        "1 << 2",
        "tags[0]",
        "user['items']",
        "[1, 2]",
        "(1, 2)",
        "{'a': 1}",
        "{1}",
        "lambda: 1",
        "[x for x in tags]",
        "f'{name}'",
        "b'x'",
        "1j",
        "...",
        "name if approved else 1",
        "(x := 1)",
        "nothing is null",
        "nothing is not null",
        "len(*tags)",
    ],
)
def test_forbidden_constructs(source: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source)
    assert caught.value.kind == "forbidden"


@pytest.mark.parametrize("name", ["open", "__import__", "eval", "exec", "getattr", "type", "len"])
def test_no_builtin_resolves_as_a_name(name: str) -> None:
    assert failure(name, {}).kind == "undefined"


@pytest.mark.parametrize(
    "source",
    [
        "(" * 100_000,
        "+".join(["1"] * 10_000),
        "+".join(["1"] * 600),  # short enough, but too many parts
        "(" * 60 + "1" + ")" * 60,
        "-" * 1999 + "1",
        "!" * 1999 + "true",
        "a." * 900 + "b",
        "x" * 2001,
    ],
)
def test_huge_inputs_are_too_complex(source: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source)
    assert caught.value.kind == "too_complex"
    assert len(str(caught.value)) < 400  # the message does not echo a huge source


def test_results_are_bounded() -> None:
    big = {"n": 2**4000, "s": "x" * 60_000, "l": [0] * 60_000}
    for source in ("n * n", "n * n * n", "s + s", "l + l"):
        assert failure(source, big).kind == "too_complex"
    assert evaluate("s + 'y'", big) == "x" * 60_000 + "y"
    assert failure("n / 3", big).kind == "too_complex"


def test_non_string_source_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError):
        compile_expression(5)  # type: ignore[arg-type]


def test_a_misbehaving_mapping_surfaces_as_expression_error() -> None:
    class Broken(dict[str, Any]):
        def __getitem__(self, key: str) -> Any:
            raise RuntimeError("boom")

    assert failure("a", Broken()).kind == "type"


def test_templates_and_values() -> None:
    assert is_template("${a}") and is_template("${a} + ${b}")
    assert not is_template("a") and not is_template(" ${a}") and not is_template(5)
    assert not is_template("${a} ") and not is_template("$")
    assert compile_value("${a} + ${b}").evaluate({"a": 1, "b": 2}) == 3
    assert compile_value("${tags}").evaluate(VARIABLES) == ["a", "b"]
    assert compile_value("LOW").evaluate({}) == "LOW"
    assert compile_value("x > ${a}").evaluate({}) == "x > ${a}"
    literal = {"nested": [1, "${a}"]}
    assert compile_value(literal).evaluate({}) is literal
    assert compile_value(None) == Value(literal=None)
    with pytest.raises(ExpressionError) as caught:
        compile_value("${a +}")
    assert caught.value.kind == "syntax"
    with pytest.raises(ExpressionError) as caught:
        compile_value("${missing}").evaluate({})
    assert caught.value.kind == "undefined"


# --- properties ---------------------------------------------------------------------

TOKENS = [
    *"abnstuvl", "user", "t", "roles", "items", ".", "#", "${", "}", "{", "(", ")", "[",
    "]", ",", "&&", "||", "!", "==", "!=", "<", ">=", "+", "-", "*", "/", "%", "**", "in",
    "not", "and", "or", "is", "true", "false", "null", "'x'", '"y"', "'", '"', "\\", "0",
    "1", "2.5", "1e999", "len", "contains", "__class__", "_p", "__import__", "open", "eval",
    "exec", "getattr", "type", "lambda", ":", "if", "else", "for", " ", "\n", "\x00", "é",
]  # fmt: skip
token_text = st.lists(st.sampled_from(TOKENS), max_size=30)
sources = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=string.printable, max_size=80),
    token_text.map("".join),
    token_text.map(" ".join),
)


ATOMS = [
    "t", "#t", "${t}", "u", "u.v", "#u.v", "u.v.w", "l", "s", "n", "1", "2.5", "'x'", "null",
    "true", "t.x", "t.items", "l.x", "open", "__import__", "eval", "exec", "getattr", "type",
]  # fmt: skip
BINARY = ["==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "&&", "||", "in", "not in"]
structured = st.recursive(
    st.sampled_from(ATOMS),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(BINARY), inner).map(lambda p: f"({p[0]} {p[1]} {p[2]})"),
        inner.map(lambda a: f"!{a}"),
        inner.map(lambda a: f"-{a}"),
        inner.map(lambda a: f"len({a})"),
        st.tuples(inner, inner).map(lambda p: f"contains({p[0]}, {p[1]})"),
    ),
    max_leaves=8,
)


@given(st.one_of(sources, structured))
@settings(max_examples=500, deadline=None)
def test_any_text_raises_only_expression_errors(source: str) -> None:
    try:
        expression = compile_expression(source)
    except ExpressionError:
        return
    for method in (expression.evaluate, expression.evaluate_bool):
        with contextlib.suppress(ExpressionError):
            method(VARIABLES)


class Tripwire:
    """Records every attribute read or protocol method used, except identity and equality."""

    def __init__(self) -> None:
        object.__setattr__(self, "touched", [])

    def __getattribute__(self, name: str) -> Any:
        object.__getattribute__(self, "touched").append(name)
        return object.__getattribute__(self, name)

    def __getattr__(self, name: str) -> Any:
        object.__getattribute__(self, "touched").append(name)
        raise AttributeError(name)


def _recorder(name: str) -> Any:
    def method(self: Tripwire, *args: Any) -> Any:
        object.__getattribute__(self, "touched").append(name)
        return "<tripwire>" if name in ("__str__", "__repr__", "__format__") else NotImplemented

    return method


PROTOCOL = [
    "__call__", "__len__", "__iter__", "__contains__", "__getitem__", "__bool__", "__lt__",
    "__le__", "__gt__", "__ge__", "__add__", "__radd__", "__sub__", "__rsub__", "__mul__",
    "__rmul__", "__truediv__", "__rtruediv__", "__mod__", "__rmod__", "__neg__", "__pos__",
    "__index__", "__int__", "__float__", "__str__", "__repr__", "__format__",
    "__length_hint__", "__reversed__",
]  # fmt: skip
for _name in PROTOCOL:
    setattr(Tripwire, _name, _recorder(_name))


@given(st.one_of(structured, token_text.map(" ".join)))
@settings(max_examples=500, deadline=None)
def test_evaluation_never_touches_values_or_builtins(source: str) -> None:
    wire = Tripwire()
    variables = {"t": wire, "u": {"v": wire}, "l": [wire, 1], "s": "text", "n": 1}
    try:
        result = compile_expression(source).evaluate(variables)
    except ExpressionError:
        result = None
    assert object.__getattribute__(wire, "touched") == []
    # nothing but the variables' own values comes out: no builtin, function or type
    json_types = (type(None), bool, int, float, str, list, dict, Tripwire)
    assert type(result) in json_types, source


def test_tripwire_detects_access() -> None:
    wire = Tripwire()
    with pytest.raises(AttributeError):
        _ = wire.anything
    with pytest.raises(TypeError):
        len(wire)
    touched = object.__getattribute__(wire, "touched")
    assert "anything" in touched and "__len__" in touched
