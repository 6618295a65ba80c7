"""Validation reports every problem of a definition at once, each with its path and step id."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import durable
from durable.flow import compile_definition, validate_definition


def good() -> dict[str, Any]:
    return {
        "id": "LOS::loan-application",
        "name": "Loan application",
        "metadata": {"owner": "credit"},
        "steps": [
            {
                "id": "score",
                "name": "Score",
                "type": "SERVICE_TASK",
                "jobType": "score",
                "nextStep": "split",
                "delegateClass": "kept",
            },
            {
                "id": "split",
                "name": "Split",
                "type": "PARALLEL_GATEWAY",
                "parallelNextSteps": ["a", "b"],
                "joinStep": "join",
            },
            {
                "id": "a",
                "name": "A",
                "type": "USER_TASK",
                "nextStep": "join",
                "boundaryEvents": [
                    {
                        "type": "TIMER",
                        "duration": "P1DT2H30M",
                        "interrupting": False,
                        "targetStepId": "remind",
                    }
                ],
            },
            {"id": "remind", "name": "Remind", "type": "SERVICE_TASK", "jobType": "remind"},
            {"id": "b", "name": "B", "type": "WAIT", "nextStep": "join"},
            {"id": "join", "name": "Join", "type": "JOIN_GATEWAY", "nextStep": "t"},
            {
                "id": "t",
                "name": "T",
                "type": "TRANSFORMATION",
                "transformations": {"x": "${a + 1}", "y": [1]},
                "nextStep": "route",
            },
            {
                "id": "route",
                "name": "Route",
                "type": "DECISION",
                "conditionalNextSteps": {"x > 1": "done", "true": "done"},
            },
            {"id": "done", "name": "Done", "type": "END"},
        ],
    }


def problems(document: Any) -> dict[str, str]:
    with pytest.raises(durable.ValidationError) as caught:
        compile_definition(document)
    return {p.path: p.message for p in caught.value.problems}


def test_a_valid_definition_compiles():
    graph = compile_definition(good())
    assert graph.entry == "score" and graph.nodes["a"].timers[0].seconds == 95400
    assert validate_definition(good()) == []


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (lambda d: d.pop("id"), "id", "required"),
        (lambda d: d.update(id="bad id!"), "id", "pattern"),
        (lambda d: d.update(id="x" * 257), "id", "at most 256"),
        (lambda d: d.update(name=""), "name", "at least 1"),
        (lambda d: d.update(steps=[]), "steps", "at least 1"),
        (lambda d: d.update(autoStartNextWorkflow=True), "nextWorkflowId", "required"),
        (lambda d: d["steps"][0].update(type="ROBOT"), "steps[0].type", "unknown step type"),
        (lambda d: d["steps"][0].update(name=""), "steps[0].name", "at least 1"),
        (lambda d: d["steps"][0].pop("jobType"), "steps[0].jobType", "required"),
        (
            lambda d: d["steps"][0].update(retryCount=-1),
            "steps[0].retryCount",
            "greater than or equal",
        ),
        (lambda d: d["steps"][0].update(retryCount="3"), "steps[0].retryCount", "integer"),
        (
            lambda d: d["steps"][0].update(nextStep="nowhere"),
            "steps[0].nextStep",
            "unknown step 'nowhere'",
        ),
        (lambda d: d["steps"][1].update(joinStep="a"), "steps[1].joinStep", "not a JOIN_GATEWAY"),
        (
            lambda d: d["steps"][1].update(parallelNextSteps=["a"]),
            "steps[1].parallelNextSteps",
            "at least 2",
        ),
        (
            lambda d: d["steps"][2]["boundaryEvents"][0].update(duration="2 days"),
            "steps[2].boundaryEvents[0].duration",
            "ISO-8601",
        ),
        (
            lambda d: d["steps"][2]["boundaryEvents"][0].update(type="MESSAGE"),
            "steps[2].boundaryEvents[0].type",
            "TIMER",
        ),
        (
            lambda d: d["steps"][2]["boundaryEvents"][0].update(targetStepId="zz"),
            "steps[2].boundaryEvents[0].targetStepId",
            "unknown step",
        ),
        (
            lambda d: d["steps"][5].update(
                boundaryEvents=[{"type": "TIMER", "duration": "PT1S", "targetStepId": "done"}]
            ),
            "steps[5].boundaryEvents",
            "only allowed",
        ),
        (lambda d: d["steps"][4].pop("nextStep"), "steps[4].nextStep", "required"),
        (lambda d: d["steps"][5].pop("nextStep"), "steps[5].nextStep", "required"),
        (
            lambda d: d["steps"][6].update(transformations={}),
            "steps[6].transformations",
            "at least 1",
        ),
        (lambda d: d["steps"][6].pop("nextStep"), "steps[6].nextStep", "required"),
        (
            lambda d: d["steps"][6].update(transformations={"x": "${a +}"}),
            "steps[6].transformations.x",
            "syntax",
        ),
        (
            lambda d: d["steps"][7].update(conditionalNextSteps={}),
            "steps[7].conditionalNextSteps",
            "at least 1",
        ),
        (
            lambda d: d["steps"][7].update(conditionalNextSteps={"x >> (": "done"}),
            "steps[7].conditionalNextSteps['x >> (']",
            "",
        ),
        (lambda d: d["steps"][3].update(id="score"), "steps[3].id", "duplicate"),
        (
            lambda d: d["steps"].append({"id": "orphan", "name": "O", "type": "END"}),
            "steps[9]",
            "not reachable",
        ),
        (lambda d: d["steps"].append("nope"), "steps[9]", "must be a JSON object"),
    ],
)
def test_each_rule_reports_its_path(change, path, words):
    document = good()
    change(document)
    found = problems(document)
    assert path in found, found
    assert words.lower() in found[path].lower()


def test_every_problem_is_reported_at_once_with_step_ids():
    document = good()
    document["steps"][0]["nextStep"] = "x1"
    document["steps"][4].pop("nextStep")
    document["steps"][7]["conditionalNextSteps"] = {"((": "done"}
    with pytest.raises(durable.ValidationError) as caught:
        compile_definition(document)
    found = {(p.path, p.step_id) for p in caught.value.problems}
    assert ("steps[0].nextStep", "score") in found
    assert ("steps[4].nextStep", "b") in found
    assert any(path.startswith("steps[7].conditionalNextSteps") for path, _ in found)
    assert "steps[0].nextStep (step 'score')" in str(caught.value)


def test_shape_and_semantic_problems_are_reported_together():
    document = good()
    del document["name"]
    transform = document["steps"][6]
    del transform["name"]
    transform["nextStep"] = "nowhere"
    transform["transformations"] = {"x": "${a +}"}
    found = problems(document)
    assert found["name"] == "Field required"
    assert found["steps[6].name"] == "Field required"
    assert "unknown step 'nowhere'" in found["steps[6].nextStep"]
    assert "syntax error" in found["steps[6].transformations.x"]


def test_a_step_whose_links_are_broken_hides_no_guess_about_reachability():
    document = good()
    document["steps"][6]["nextStep"] = 7
    assert set(problems(document)) == {"steps[6].nextStep"}


def test_a_broken_step_keeps_its_known_links_for_reachability():
    document = good()
    del document["steps"][5]["name"]  # the join: its nextStep is still readable
    assert set(problems(document)) == {"steps[5].name"}


def test_no_reachable_end_is_a_problem():
    document = {
        "id": "X",
        "name": "X",
        "steps": [
            {"id": "a", "name": "A", "type": "WAIT", "nextStep": "b"},
            {"id": "b", "name": "B", "type": "WAIT", "nextStep": "a"},
        ],
    }
    assert "no END" in problems(document)["steps"]


def test_decision_table_problems_have_cell_paths():
    document = good()
    document["steps"].insert(
        8,
        {
            "id": "grid",
            "name": "G",
            "type": "DECISION_TABLE",
            "hitPolicy": "WHATEVER",
            "inputs": [{"expression": "x"}],
            "outputs": [{"name": "band"}],
            "rules": [{"when": ["[1..", "2"], "then": ["A"]}],
        },
    )
    document["steps"][7]["conditionalNextSteps"] = {"x > 1": "grid", "true": "done"}
    found = problems(document)
    assert any("hitPolicy" in path for path in found), found
    assert any(path.startswith("steps[8].rules[0]") for path in found), found


@pytest.mark.parametrize(
    "document",
    [None, [], "text", 42, {"steps": None}, {"id": 1, "name": 2, "steps": [None, 3, []]}],
)
def test_wrong_shapes_are_validation_errors(document):
    with pytest.raises(durable.ValidationError):
        compile_definition(document)


def test_huge_and_deep_documents_are_refused_cleanly():
    deep: Any = "leaf"
    for _ in range(10_000):
        deep = [deep]
    document = good()
    document["metadata"] = deep
    assert "nested deeper" in problems(document)["$"]
    wide = good()
    wide["steps"] = [copy.deepcopy(wide["steps"][0]) for _ in range(20_000)]
    assert problems(wide)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=40,
)
step_like = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["a", "b", "c", ""]) | json_values,
        "name": st.text(max_size=5) | json_values,
        "type": st.sampled_from(
            [
                "SERVICE_TASK",
                "USER_TASK",
                "DECISION",
                "DECISION_TABLE",
                "TRANSFORMATION",
                "WAIT",
                "PARALLEL_GATEWAY",
                "JOIN_GATEWAY",
                "END",
            ]
        )
        | json_values,
        "nextStep": st.sampled_from(["a", "b", "c"]) | json_values,
        "jobType": json_values,
        "conditionalNextSteps": st.dictionaries(st.text(max_size=12), st.sampled_from(["a", "b"]))
        | json_values,
        "transformations": st.dictionaries(st.text(max_size=5), json_values) | json_values,
        "parallelNextSteps": st.lists(st.sampled_from(["a", "b", "c"])) | json_values,
        "joinStep": st.sampled_from(["a", "b", "c"]) | json_values,
        "boundaryEvents": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "type": json_values,
                    "duration": st.text(max_size=8),
                    "targetStepId": json_values,
                    "interrupting": json_values,
                },
            )
        )
        | json_values,
        "hitPolicy": json_values,
        "inputs": json_values,
        "outputs": json_values,
        "rules": json_values,
    },
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=10) | json_values,
        "name": st.text(max_size=10) | json_values,
        "steps": st.lists(step_like, max_size=6) | json_values,
        "autoStartNextWorkflow": json_values,
        "nextWorkflowId": json_values,
    },
)


@settings(max_examples=400, deadline=None)
@given(documents | json_values)
def test_random_documents_only_ever_produce_validation_errors(document):
    try:
        graph = compile_definition(document)
    except durable.ValidationError as exc:
        assert exc.problems and all(p.path and p.message for p in exc.problems)
    else:
        json.dumps(graph.document)  # a valid one is storable as given


@pytest.mark.parametrize(
    ("condition", "gives"),
    [
        ("1 + 2", "arithmetic"),
        ("'yes'", "a constant string"),
        ("42", "a constant number"),
        ("amount * 2", "arithmetic"),
        ("-amount", "a number"),
    ],
)
def test_a_decision_condition_that_cannot_be_boolean_is_refused_at_upload(condition, gives):
    document = good()
    document["steps"][7]["conditionalNextSteps"] = {condition: "done", "true": "done"}
    found = problems(document)
    path = f"steps[7].conditionalNextSteps[{condition!r}]"
    assert path in found, found
    assert "must give true or false" in found[path] and gives in found[path]


@pytest.mark.parametrize(
    "condition",
    ["flag", "x > 1", "'VIP' in tags", "!done", "a && b", "len(items) == 0", "user.active",
     "contains(tags, 'x')", "true", "false"],
)  # fmt: skip
def test_a_decision_condition_that_may_be_boolean_is_accepted(condition):
    document = good()
    document["steps"][7]["conditionalNextSteps"] = {condition: "done", "true": "done"}
    compile_definition(document)
