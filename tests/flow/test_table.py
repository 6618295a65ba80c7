"""Decision tables: input cells, hit policies, defaults, and the problems of bad grids."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from durable.errors import ExpressionError, Problem
from durable.flow._table import (
    HIT_POLICIES,
    DecisionTable,
    DecisionTableError,
    compile_table,
    compile_unary_test,
    parse_hit_policy,
)

RISK = {
    "id": "risk",
    "name": "Risk band",
    "type": "DECISION_TABLE",
    "hitPolicy": "FIRST",
    "inputs": [{"expression": "creditScore"}, {"expression": "loanAmount"}],
    "outputs": [{"name": "riskBand"}, {"name": "limit"}],
    "rules": [
        {"when": [">= 700", "<= 100000"], "then": ["LOW", 100000]},
        {"when": ["[500..700)", "-"], "then": ["MEDIUM", "${loanAmount / 2}"]},
        {"when": ["< 500", "-"], "then": ["HIGH", 0]},
    ],
    "nextStep": "route",
}


def table(
    hit_policy: str | None,
    rules: list[tuple[list[Any], list[Any]]],
    outputs: list[dict[str, Any]] | None = None,
    inputs: tuple[str, ...] = ("x",),
) -> DecisionTable:
    step: dict[str, Any] = {
        "id": "t",
        "inputs": [{"expression": source} for source in inputs],
        "outputs": outputs or [{"name": "out"}],
        "rules": [{"when": when, "then": then} for when, then in rules],
    }
    if hit_policy is not None:
        step["hitPolicy"] = hit_policy
    compiled, problems = compile_table(step, "steps[0]")
    assert problems == [] and compiled is not None
    return compiled


def test_the_format_example() -> None:
    compiled, problems = compile_table(RISK, "steps[2]")
    assert problems == [] and compiled is not None
    assert compiled.evaluate({"creditScore": 720, "loanAmount": 5000}) == {
        "riskBand": "LOW",
        "limit": 100000,
    }
    assert compiled.evaluate({"creditScore": 600, "loanAmount": 5000}) == {
        "riskBand": "MEDIUM",
        "limit": 2500.0,
    }
    assert compiled.evaluate({"creditScore": 499, "loanAmount": 1}) == {
        "riskBand": "HIGH",
        "limit": 0,
    }
    with pytest.raises(DecisionTableError, match="^no rule matched"):
        compiled.evaluate({"creditScore": 720, "loanAmount": 200000})


@pytest.mark.parametrize(
    ("cell", "passing", "failing"),
    [
        ("-", [1, "a", None, [1]], []),
        ("", [1, None], []),
        ("  -  ", [0], []),
        ("700", [700, 700.0], [699, "700", None]),
        (700, [700], [701]),
        ("'GOLD'", ["GOLD"], ["gold", 1]),
        ('"GOLD"', ["GOLD"], ["SILVER"]),
        ("true", [True], [False, None]),
        (False, [False], [True]),
        ("null", [None], [0, ""]),
        (None, [None], [0]),
        ("< 500", [499, 1.5], [500, 501, None]),
        ("<= 500", [500], [501]),
        ("> 1", [2], [1]),
        (">= 700", [700, 800], [699]),
        ("!= 'x'", ["y", 1, None], ["x"]),
        ("[1..5]", [1, 3, 5], [0, 6, None]),
        ("(1..5)", [2, 4.9], [1, 5]),
        ("[1..5)", [1], [5]),
        ("(1..5]", [5], [1]),
        ("[1.5..2.5]", [1.5, 2.5], [1.4]),
        ("['a'..'m']", ["a", "kiwi"], ["n"]),
        ("[-10..-1]", [-5], [0]),
        ("'GOLD', 'SILVER'", ["GOLD", "SILVER"], ["BRONZE"]),
        ("'a,b', 'c'", ["a,b", "c"], ["a", "b"]),
        ("< 0, > 10", [-1, 11], [5]),
        ("[1..2], [5..6]", [1.5, 5.5], [3]),
        ("not('GOLD', 'SILVER')", ["BRONZE"], ["GOLD", "SILVER"]),
        ("not (< 5)", [5, 6], [4]),
        ("not(-)", [], [1, None]),
        ("not(not(1))", [1], [2]),
        ("limit", [3], [4]),  # a bare identifier is a variable
        ("< limit", [2], [3]),
        ("[lo..hi]", [1, 10], [0, 11]),
        ("(limit * 2)", [6], [3]),
        ("len(name)", [3], [4]),
    ],
)
def test_input_cells(cell: Any, passing: list[Any], failing: list[Any]) -> None:
    variables = {"limit": 3, "lo": 1, "hi": 10, "name": "Ada"}
    test = compile_unary_test(cell)
    for value in passing:
        assert test.matches(value, variables) is True, value
    for value in failing:
        assert test.matches(value, variables) is False, value


@pytest.mark.parametrize(
    ("cell", "kind"),
    [
        ("[1, 2]", "syntax"),
        ("[1..]", "syntax"),
        ("< ", "syntax"),
        ("'abc", "syntax"),
        ("1..2", "syntax"),
        ("'a',", "syntax"),
        ("not(", "syntax"),
        ("> > 1", "syntax"),
        ("2 ** 3", "forbidden"),
        ("x.__class__", "forbidden"),
        ([1, 2], "syntax"),
        ({"a": 1}, "syntax"),
        ("1, " * 1000, "too_complex"),
        ("not(" * 60 + "1" + ")" * 60, "too_complex"),
    ],
)
def test_bad_cells(cell: Any, kind: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_unary_test(cell)
    assert caught.value.kind == kind


def test_incomparable_types_name_the_cell() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_unary_test(">= 700").matches("high", {})
    assert caught.value.kind == "type"
    assert "'>= 700'" in str(caught.value) and "string with number" in str(caught.value)
    with pytest.raises(ExpressionError, match="type|compare"):
        compile_unary_test("[1..5]").matches([3], {})


def test_a_bare_identifier_that_is_undefined_suggests_quotes() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_unary_test("GOLD").matches("GOLD", {})
    assert caught.value.kind == "undefined"
    assert "'GOLD' in quotes" in str(caught.value)


# --- hit policies ---------------------------------------------------------------------


def test_unique() -> None:
    unique = table("UNIQUE", [(["< 5"], ["low"]), (["[5..10]"], ["mid"]), ([">= 8"], ["high"])])
    assert unique.evaluate({"x": 1}) == {"out": "low"}
    with pytest.raises(DecisionTableError) as caught:
        unique.evaluate({"x": 9})
    assert "rules 2 and 3 both matched under hit policy UNIQUE" in str(caught.value)
    three = table("U", [(["-"], [1]), (["-"], [2]), (["-"], [3])])
    with pytest.raises(DecisionTableError, match="rules 1, 2 and 3 matched"):
        three.evaluate({"x": 0})


def test_unique_is_the_default_policy() -> None:
    default = table(None, [(["-"], [1]), (["-"], [2])])
    assert default.hit_policy == "U"
    with pytest.raises(DecisionTableError, match="UNIQUE"):
        default.evaluate({"x": 0})


def test_any() -> None:
    rules = [(["< 5"], ["low"]), (["< 10"], ["low"]), ([">= 8"], ["high"])]
    any_policy = table("ANY", rules)
    assert any_policy.evaluate({"x": 1}) == {"out": "low"}
    with pytest.raises(DecisionTableError) as caught:
        any_policy.evaluate({"x": 9})
    assert "rules 2 and 3 matched under hit policy ANY with different outputs" in str(caught.value)


def test_first_stops_at_the_first_match() -> None:
    # the second rule would fail if it were looked at: FIRST never evaluates it
    first = table("F", [(["-"], ["one"]), (["missing"], ["${missing}"])])
    assert first.evaluate({"x": 0}) == {"out": "one"}


@pytest.mark.parametrize("policy", ["R", "RULE_ORDER", "C", "COLLECT"])
def test_rule_order_and_collect_give_lists(policy: str) -> None:
    outputs = [{"name": "a"}, {"name": "b"}]
    rules = [(["> 0"], [1, "x"]), (["> 5"], [2, "y"]), (["> 9"], [3, "z"])]
    collect = table(policy, rules, outputs)
    assert collect.evaluate({"x": 7}) == {"a": [1, 2], "b": ["x", "y"]}
    assert collect.evaluate({"x": 1}) == {"a": [1], "b": ["x"]}


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("C+", 6.5), ("COLLECT_SUM", 6.5), ("C#", 3), ("C<", 1), ("C>", 3.5), ("collect max", 3.5)],
)
def test_aggregators(policy: str, expected: float) -> None:
    rules: list[tuple[list[Any], list[Any]]] = [
        (["-"], [1]),
        (["-"], [2]),
        (["-"], ["${x + 3.5}"]),
        (["< 0"], [100]),
    ]
    assert table(policy, rules).evaluate({"x": 0}) == {"out": expected}


def test_aggregators_need_numbers() -> None:
    summing = table("C+", [(["-"], [1]), (["-"], ["two"])])
    with pytest.raises(DecisionTableError, match="COLLECT_SUM needs numbers.*rule 2"):
        summing.evaluate({"x": 0})
    with pytest.raises(DecisionTableError, match="COLLECT_MAX needs numbers"):
        table("C>", [(["-"], [True])]).evaluate({"x": 0})
    # counting does not look at the values
    assert table("C#", [(["-"], ["two"])]).evaluate({"x": 0}) == {"out": 1}


# --- no match, defaults ---------------------------------------------------------------


@pytest.mark.parametrize("policy", ["U", "A", "F", "R", "C", "C+", "C#", "C<", "C>"])
def test_no_match_takes_the_defaults_under_every_policy(policy: str) -> None:
    outputs = [{"name": "band", "default": "NONE"}, {"name": "limit", "default": "${x * 2}"}]
    compiled = table(policy, [(["< 0"], ["NEG", 0])], outputs)
    assert compiled.evaluate({"x": 4}) == {"band": "NONE", "limit": 8}


@pytest.mark.parametrize("policy", ["U", "F", "R", "C#"])
def test_no_match_without_a_default_fails(policy: str) -> None:
    outputs: list[dict[str, Any]] = [{"name": "band", "default": None}, {"name": "limit"}]
    compiled = table(policy, [(["< 0"], ["NEG", 0])], outputs)
    with pytest.raises(DecisionTableError) as caught:
        compiled.evaluate({"x": 4})
    assert str(caught.value) == "no rule matched (outputs without a default: limit)"


def test_outputs_are_evaluated_for_matching_rules_only() -> None:
    compiled = table("R", [(["> 5"], ["${missing}"]), (["-"], ["${x}"])])
    assert compiled.evaluate({"x": 1}) == {"out": [1]}
    with pytest.raises(ExpressionError) as caught:
        compiled.evaluate({"x": 6})
    assert caught.value.kind == "undefined"
    assert "rule 1, output 'out'" in str(caught.value)


def test_cell_errors_name_the_rule_and_input() -> None:
    compiled = table("F", [(["-", "< 5"], [1])], inputs=("x", "y"))
    with pytest.raises(ExpressionError) as caught:
        compiled.evaluate({"x": 0, "y": "text"})
    assert caught.value.kind == "type"
    assert str(caught.value).startswith("rule 1, input 2: input cell '< 5'")
    with pytest.raises(ExpressionError, match="undefined variable 'y'"):
        compiled.evaluate({"x": 0})


def test_a_table_without_inputs_always_matches() -> None:
    compiled = table("C", [([], ["a"]), ([], ["b"])], inputs=())
    assert compiled.evaluate({}) == {"out": ["a", "b"]}


def test_evaluate_returns_a_fresh_dict() -> None:
    compiled = table("F", [(["-"], [1])])
    first = compiled.evaluate({"x": 0})
    first["out"] = 2
    assert compiled.evaluate({"x": 0}) == {"out": 1}


# --- hit policy names -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("U", "U"),
        ("unique", "U"),
        ("ANY", "A"),
        ("a", "A"),
        ("First", "F"),
        ("RULE_ORDER", "R"),
        ("rule order", "R"),
        ("R", "R"),
        ("COLLECT", "C"),
        ("C+", "C+"),
        ("COLLECT_SUM", "C+"),
        ("collect sum", "C+"),
        ("C#", "C#"),
        ("Collect_Count", "C#"),
        ("C<", "C<"),
        ("COLLECT MIN", "C<"),
        ("c>", "C>"),
        (" COLLECT_MAX ", "C>"),
        ("PRIORITY", None),
        ("C*", None),
        ("", None),
        (1, None),
        (None, None),
        (["U"], None),
    ],
)
def test_parse_hit_policy(text: Any, code: str | None) -> None:
    assert parse_hit_policy(text) == code


def test_hit_policy_spellings_map_to_codes() -> None:
    assert set(HIT_POLICIES.values()) == {"U", "A", "F", "R", "C", "C+", "C#", "C<", "C>"}
    assert all(parse_hit_policy(spelling) == code for spelling, code in HIT_POLICIES.items())


# --- problems of bad tables ------------------------------------------------------------


def problems_of(step: Any, path: str = "steps[4]") -> dict[str, str]:
    compiled, problems = compile_table(step, path)
    assert compiled is None and problems
    return {problem.path: problem.message for problem in problems}


def test_every_problem_is_reported_with_its_path() -> None:
    step = {
        "id": "grid",
        "hitPolicy": "SOMETIMES",
        "inputs": [{"expression": "a >< b"}, {"nope": 1}, "x"],
        "outputs": [{"name": "band"}, {"name": ""}, {"name": "band", "default": "${1 +}"}],
        "rules": [
            {"when": ["-", "[1..", "'x'"], "then": [1, 2, "${oops(}"]},
            {"when": ["-"], "then": [1, 2, 3]},
            {"when": "-", "then": None},
            "rule",
        ],
    }
    found = problems_of(step)
    assert set(found) == {
        "steps[4].hitPolicy",
        "steps[4].inputs[0].expression",
        "steps[4].inputs[1].expression",
        "steps[4].inputs[2].expression",
        "steps[4].outputs[1].name",
        "steps[4].outputs[2].name",
        "steps[4].outputs[2].default",
        "steps[4].rules[0].when[1]",
        "steps[4].rules[0].then[2]",
        "steps[4].rules[1].when",
        "steps[4].rules[2].when",
        "steps[4].rules[2].then",
        "steps[4].rules[3]",
    }
    assert "unknown hit policy 'SOMETIMES'" in found["steps[4].hitPolicy"]
    assert "column 4" in found["steps[4].inputs[0].expression"]
    assert "duplicate output 'band'" in found["steps[4].outputs[2].name"]
    assert found["steps[4].rules[1].when"] == "has 1 cells but the table has 3 inputs"
    assert "'[1..'" in found["steps[4].rules[0].when[1]"]
    _, problems = compile_table(step, "steps[4]")
    assert {problem.step_id for problem in problems} == {"grid"}


@pytest.mark.parametrize(
    ("step", "paths"),
    [
        ({}, {".inputs", ".outputs", ".rules"}),
        ({"inputs": [], "outputs": [], "rules": []}, {".outputs", ".rules"}),
        ({"inputs": {}, "outputs": "x", "rules": {"when": []}}, {".inputs", ".outputs", ".rules"}),
        ({"hitPolicy": 7, "inputs": [], "outputs": [{"name": 1}], "rules": [{}]},
         {".hitPolicy", ".outputs[0].name", ".rules[0].when", ".rules[0].then"}),
        ({"inputs": [], "outputs": [{"name": "o"}], "rules": [{"when": [], "then": []}]},
         {".rules[0].then"}),
        ({"inputs": [None], "outputs": [None], "rules": [None]},
         {".inputs[0].expression", ".outputs[0].name", ".rules[0]"}),
    ],
)  # fmt: skip
def test_shapes(step: dict[str, Any], paths: set[str]) -> None:
    assert set(problems_of(step)) == {f"steps[4]{path}" for path in paths}


@pytest.mark.parametrize("step", [None, 1, "table", [1, 2]])
def test_a_step_that_is_not_an_object(step: Any) -> None:
    compiled, problems = compile_table(step, "steps[1]")
    assert compiled is None
    assert problems == [Problem("steps[1]", "a DECISION_TABLE step must be an object")]


def test_a_non_string_id_gives_no_step_id() -> None:
    _, problems = compile_table({"id": 5}, "steps[0]")
    assert problems and all(problem.step_id is None for problem in problems)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
cells = st.one_of(
    json_values,
    st.sampled_from(["-", "< 5", "[1..2]", "'a', 'b'", "not(1)", "x", "${x}", "(", "[1..", ""]),
    st.text(alphabet="-<>=!'\"[]().,0123456789abnot x${}", max_size=20),
)
steps = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values,
        "hitPolicy": st.sampled_from(["U", "ANY", "collect sum", "?"]) | json_values,
        "inputs": st.lists(st.fixed_dictionaries({"expression": cells}) | json_values, max_size=3)
        | json_values,
        "outputs": st.lists(
            st.fixed_dictionaries({"name": st.sampled_from(["a", "b", ""]) | json_values},
                                  optional={"default": cells}) | json_values,
            max_size=3,
        )
        | json_values,
        "rules": st.lists(
            st.fixed_dictionaries({}, optional={"when": st.lists(cells, max_size=3) | json_values,
                                                "then": st.lists(cells, max_size=3) | json_values})
            | json_values,
            max_size=4,
        )
        | json_values,
    },
)  # fmt: skip


@given(st.one_of(steps, json_values))
@settings(max_examples=400, deadline=None)
def test_compile_table_never_raises(step: Any) -> None:
    compiled, problems = compile_table(step, "steps[0]")
    assert (compiled is None) == bool(problems)
    assert all(problem.path.startswith("steps[0]") for problem in problems)
    if compiled is not None:
        for x in (None, 0, 1.5, "a", True):
            try:
                result = compiled.evaluate({"x": x})
            except (ExpressionError, DecisionTableError):
                continue
            assert isinstance(result, dict)
