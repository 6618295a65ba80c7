"""Decision tables: compiling the rule grid of a DECISION_TABLE step, and evaluating it.

Input cells are unary tests of the input's value, in the DMN style:

- ``-`` or an empty string: any value;
- an expression, usually a literal (``700``, ``'GOLD'``, ``true``, ``null``): equality. A
  JSON number, boolean or null cell is such a literal. As in DMN, a bare identifier is a
  variable: ``GOLD`` reads the variable ``GOLD``, the string is written ``'GOLD'``;
- ``< e``, ``<= e``, ``> e``, ``>= e``, ``!= e``: a comparison with the expression ``e``;
- ``[a..b]``, ``(a..b)``, ``[a..b)``, ``(a..b]``: a range, closed on a square bracket;
  the endpoints are expressions too;
- ``t1, t2, ...``: any of the tests (commas inside strings and brackets do not split);
- ``not(t)``: the negation of a test, which may be a list.

Ordering tests (comparisons and ranges) take two numbers or two strings; another pair is an
:class:`~durable.errors.ExpressionError` of kind ``type`` naming the cell, except that a
null on either side simply does not match (in DMN a comparison with null is null).

Output cells are literals or ``"${expr}"``, evaluated for matching rules only. When no rule
matches, every output takes its ``default`` (a literal or ``"${expr}"``); if one has none,
the table fails with "no rule matched", under every hit policy, COLLECT_COUNT included. A
missing ``hitPolicy`` means UNIQUE, the DMN default. A table may have no inputs, as DMN
allows: its rules have empty ``when`` lists and always match.
"""

from __future__ import annotations

import json
import operator
import re
import reprlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from types import MappingProxyType
from typing import Any, TypeVar

from ..errors import DurableError, ExpressionError, Problem
from ._expr import (
    MAX_DEPTH,
    MAX_SOURCE_LENGTH,
    Expression,
    Value,
    comparable,
    compile_expression,
    compile_value,
    string_end,
    type_name,
)

_NAMES = {"U": "UNIQUE", "A": "ANY", "F": "FIRST", "R": "RULE_ORDER", "C": "COLLECT",
          "C+": "COLLECT_SUM", "C#": "COLLECT_COUNT", "C<": "COLLECT_MIN",
          "C>": "COLLECT_MAX"}  # fmt: skip

HIT_POLICIES: Mapping[str, str] = MappingProxyType(
    {code: code for code in _NAMES}
    | {word: code for code, word in _NAMES.items()}
    | {word.replace("_", " "): code for code, word in _NAMES.items() if "_" in word}
)
"""Every accepted spelling of a hit policy (in capitals) -> its code (``U``, ``C+``, ...)."""

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip
_NOT = re.compile(r"not\s*\(")


class DecisionTableError(DurableError):
    """A decision table found no answer: no rule matched, or the matches conflict."""


def parse_hit_policy(text: Any) -> str | None:
    """The code of a hit policy written as a letter or a word, in any case; else None."""
    if not isinstance(text, str):
        return None
    return HIT_POLICIES.get("_".join(text.upper().replace("_", " ").split()))


class UnaryTest:
    """A compiled input cell: a test of one input value. This base class is ``-``."""

    __slots__ = ("cell",)

    def __init__(self, cell: str) -> None:
        self.cell = cell

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.cell!r})"

    def matches(self, value: Any, variables: Mapping[str, Any]) -> bool:
        """Whether ``value`` passes the test; expressions in the cell read ``variables``.

        Raises:
            ExpressionError: an expression of the cell failed, or the values cannot be
                ordered (``kind="type"``).
        """
        return True  # the test "-": any value

    def _bound(self, operand: Value, variables: Mapping[str, Any]) -> Any:
        try:
            return operand.evaluate(variables)
        except ExpressionError as exc:
            source = operand.expression.source.strip() if operand.expression else ""
            if exc.kind != "undefined" or not source.isidentifier():
                raise
            hint = f"{exc}; to compare with the string, write '{source}' in quotes"
            raise ExpressionError(exc.kind, hint, exc.expression) from None

    def _order(self, value: Any, symbol: str, bound: Any) -> bool:
        if value is None or bound is None:
            return False
        if not comparable(value, bound):
            got = f"{type_name(value)} with {type_name(bound)}"
            message = f"input cell {self.cell!r} cannot compare {got} using '{symbol}'"
            raise ExpressionError("type", message, self.cell)
        return _ORDER[symbol](value, bound)


class _Not(UnaryTest):
    __slots__ = ("test",)

    def __init__(self, cell: str, test: UnaryTest) -> None:
        super().__init__(cell)
        self.test = test

    def matches(self, value: Any, variables: Mapping[str, Any]) -> bool:
        return not self.test.matches(value, variables)


class _AnyOf(UnaryTest):
    __slots__ = ("tests",)

    def __init__(self, cell: str, tests: Sequence[UnaryTest]) -> None:
        super().__init__(cell)
        self.tests = tuple(tests)

    def matches(self, value: Any, variables: Mapping[str, Any]) -> bool:
        return any(test.matches(value, variables) for test in self.tests)


class _Compare(UnaryTest):
    __slots__ = ("operand", "symbol")

    def __init__(self, cell: str, symbol: str, operand: Value) -> None:
        super().__init__(cell)
        self.symbol, self.operand = symbol, operand

    def matches(self, value: Any, variables: Mapping[str, Any]) -> bool:
        bound = self._bound(self.operand, variables)
        if self.symbol == "==":
            return (value == bound) is True
        if self.symbol == "!=":
            return (value == bound) is not True
        return self._order(value, self.symbol, bound)


class _Range(UnaryTest):
    __slots__ = ("high", "high_symbol", "low", "low_symbol")

    def __init__(self, cell: str, low: Value, high: Value, closed: tuple[bool, bool]) -> None:
        super().__init__(cell)
        self.low, self.low_symbol = low, ">=" if closed[0] else ">"
        self.high, self.high_symbol = high, "<=" if closed[1] else "<"

    def matches(self, value: Any, variables: Mapping[str, Any]) -> bool:
        low, high = self._bound(self.low, variables), self._bound(self.high, variables)
        return self._order(value, self.low_symbol, low) and self._order(
            value, self.high_symbol, high
        )


def _top_level(text: str) -> list[int]:
    """Indexes of the characters of ``text`` outside string literals and brackets."""
    found, depth, index = [], 0, 0
    while index < len(text):
        char = text[index]
        if char in "'\"":
            index = string_end(text, index)
            continue
        depth -= char in ")]}"
        if depth == 0:
            found.append(index)
        depth += char in "([{"
        index += 1
    return found


def _operand(text: str) -> Value:
    if not text.strip():
        raise ExpressionError("syntax", "a value is missing", text)
    return Value(expression=compile_expression(text.strip()))


def _simple_test(text: str) -> UnaryTest:
    """A comparison, a range or an equality (one entry of a comma list)."""
    for symbol in ("<=", ">=", "!=", "<", ">"):
        if text.startswith(symbol):
            return _Compare(text, symbol, _operand(text[len(symbol) :]))
    if len(text) > 1 and text[0] in "[(" and text[-1] in "])":
        inner = text[1:-1]
        dots = [index for index in _top_level(inner) if inner.startswith("..", index)]
        if dots:
            low, high = _operand(inner[: dots[0]]), _operand(inner[dots[0] + 2 :])
            return _Range(text, low, high, (text[0] == "[", text[-1] == "]"))
        if text[0] == "[":
            raise ExpressionError("syntax", "a range is written [low..high]", text)
    return _Compare(text, "==", _operand(text))


def _test(text: str, depth: int = 0) -> UnaryTest:
    text = text.strip()
    if text in ("", "-"):
        return UnaryTest(text)
    opening = _NOT.match(text)
    if opening and text.endswith(")"):
        rest = text[opening.end() - 1 :]
        closing = _top_level(rest)
        if len(closing) > 1 and closing[1] == len(rest) - 1:  # `(` matches the final `)`
            if depth >= MAX_DEPTH:
                raise ExpressionError("too_complex", f"not(...) nested over {MAX_DEPTH} deep", text)
            return _Not(text, _test(rest[1:-1], depth + 1))
    parts = [-1, *[i for i in _top_level(text) if text[i] == ","], len(text)]
    if len(parts) == 2:
        return _simple_test(text)
    tests = [_simple_test(text[a + 1 : b].strip()) for a, b in pairwise(parts)]
    return _AnyOf(text, tests)


def compile_unary_test(cell: Any) -> UnaryTest:
    """Compile an input cell (a string, or a JSON number, boolean or null for equality).

    Raises:
        ExpressionError: the cell does not parse; the message quotes it.
    """
    if cell is None or type(cell) in (bool, int, float):
        return _Compare(json.dumps(cell), "==", Value(literal=cell))
    if not isinstance(cell, str):
        message = f"an input cell must be a string, number, boolean or null, not {type_name(cell)}"
        raise ExpressionError("syntax", message, "")
    if len(cell) > MAX_SOURCE_LENGTH:
        message = f"input cell of {len(cell)} characters (at most {MAX_SOURCE_LENGTH})"
        raise ExpressionError("too_complex", message, cell[:100])
    try:
        return _test(cell)
    except ExpressionError as exc:
        raise ExpressionError(exc.kind, f"input cell {cell!r}: {exc}", cell) from None


@dataclass(frozen=True, slots=True)
class _Output:
    name: str
    default: Value | None


@dataclass(frozen=True, slots=True)
class _Rule:
    tests: tuple[UnaryTest, ...]
    results: tuple[Value, ...]


def _rules_text(numbers: Sequence[int]) -> str:
    if len(numbers) == 2:
        return f"rules {numbers[0]} and {numbers[1]} both"
    return f"rules {', '.join(map(str, numbers[:-1]))} and {numbers[-1]}"


class DecisionTable:
    """A compiled DECISION_TABLE grid. :meth:`evaluate` gives the outputs to merge."""

    __slots__ = ("_inputs", "_outputs", "_rules", "hit_policy")

    def __init__(
        self,
        hit_policy: str,
        inputs: Sequence[Expression],
        outputs: Sequence[_Output],
        rules: Sequence[_Rule],
    ) -> None:
        self.hit_policy = hit_policy
        self._inputs, self._outputs, self._rules = tuple(inputs), tuple(outputs), tuple(rules)

    def evaluate(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """The table's outputs over ``variables``, by output name.

        Raises:
            ExpressionError: an input, cell or output expression failed; the message names
                the rule and the input or output.
            DecisionTableError: no rule matched and an output has no default, or the
                matches conflict under the hit policy.
        """
        policy, outputs = self.hit_policy, self._outputs
        values = [expression.evaluate(variables) for expression in self._inputs]
        matched: list[int] = []
        for number, rule in enumerate(self._rules, 1):
            if self._matches(number, rule, values, variables):
                matched.append(number)
                if policy == "F":
                    break
        if not matched:
            return self._defaults(variables)
        if policy == "C#":
            return {output.name: len(matched) for output in outputs}
        if policy == "U" and len(matched) > 1:
            raise DecisionTableError(
                f"{_rules_text(matched)} matched under hit policy UNIQUE, which allows one"
            )
        results = [self._results(number, variables) for number in matched]
        if policy == "A":
            for number, result in zip(matched[1:], results[1:], strict=True):
                if result != results[0]:
                    raise DecisionTableError(
                        f"rules {matched[0]} and {number} matched under hit policy ANY "
                        "with different outputs"
                    )
        if policy in ("U", "A", "F"):
            return results[0]
        lists = {output.name: [result[output.name] for result in results] for output in outputs}
        if policy in ("R", "C"):
            return lists
        return {name: self._aggregate(name, items, matched) for name, items in lists.items()}

    def _matches(
        self, number: int, rule: _Rule, values: list[Any], variables: Mapping[str, Any]
    ) -> bool:
        for position, (test, value) in enumerate(zip(rule.tests, values, strict=True), 1):
            try:
                if not test.matches(value, variables):
                    return False
            except ExpressionError as exc:
                where = f"rule {number}, input {position}: {exc}"
                raise ExpressionError(exc.kind, where, exc.expression) from exc
        return True

    def _results(self, number: int, variables: Mapping[str, Any]) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for output, cell in zip(self._outputs, self._rules[number - 1].results, strict=True):
            try:
                results[output.name] = cell.evaluate(variables)
            except ExpressionError as exc:
                where = f"rule {number}, output {output.name!r}: {exc}"
                raise ExpressionError(exc.kind, where, exc.expression) from exc
        return results

    def _defaults(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        missing = [output.name for output in self._outputs if output.default is None]
        if missing:
            raise DecisionTableError(
                f"no rule matched (outputs without a default: {', '.join(missing)})"
            )
        defaults: dict[str, Any] = {}
        for output in self._outputs:
            assert output.default is not None
            try:
                defaults[output.name] = output.default.evaluate(variables)
            except ExpressionError as exc:
                where = f"default of output {output.name!r}: {exc}"
                raise ExpressionError(exc.kind, where, exc.expression) from exc
        return defaults

    def _aggregate(self, name: str, items: list[Any], matched: list[int]) -> Any:
        for number, item in zip(matched, items, strict=True):
            if type(item) not in (int, float):
                raise DecisionTableError(
                    f"hit policy {_NAMES[self.hit_policy]} needs numbers, but rule {number} "
                    f"gives output {name!r} a {type_name(item)}"
                )
        if self.hit_policy == "C+":
            return sum(items)
        return min(items) if self.hit_policy == "C<" else max(items)


_T = TypeVar("_T")


class _Compiler:
    """Collects every problem of one table, each with its JSON path."""

    def __init__(self, path: str, step_id: str | None) -> None:
        self.path, self.step_id = path, step_id
        self.problems: list[Problem] = []

    def add(self, where: str, message: str) -> None:
        self.problems.append(Problem(f"{self.path}{where}", message, self.step_id))

    def hit_policy(self, raw: Any) -> str:
        if raw is None:
            return "U"
        code = parse_hit_policy(raw)
        if code is None:
            known = ", ".join(_NAMES.values())
            shown = reprlib.repr(raw) if isinstance(raw, str) else f"of type {type_name(raw)}"
            self.add(".hitPolicy", f"unknown hit policy {shown}; use one of {known}")
        return code or "U"

    def inputs(self, raw: Any) -> list[Expression] | None:
        if not isinstance(raw, list | tuple):
            self.add(".inputs", 'must be a list of {"expression": ...} (empty for no inputs)')
            return None
        inputs: list[Expression] = []
        for index, item in enumerate(raw):
            source = item.get("expression") if isinstance(item, Mapping) else None
            if not isinstance(source, str):
                self.add(f".inputs[{index}].expression", "must be a string (an expression)")
                continue
            try:
                inputs.append(compile_expression(source))
            except ExpressionError as exc:
                self.add(f".inputs[{index}].expression", str(exc))
        return inputs

    def outputs(self, raw: Any) -> list[_Output] | None:
        if not isinstance(raw, list | tuple) or not raw:
            self.add(".outputs", 'must be a non-empty list of {"name": ...}')
            return None
        outputs: list[_Output] = []
        seen: dict[str, int] = {}
        for index, item in enumerate(raw):
            where = f".outputs[{index}]"
            name = item.get("name") if isinstance(item, Mapping) else None
            if not isinstance(name, str) or not name:
                self.add(f"{where}.name", "must be a non-empty string")
                continue
            if name in seen:
                self.add(f"{where}.name", f"duplicate output {name!r} (also outputs[{seen[name]}])")
            seen.setdefault(name, index)
            default = None
            if isinstance(item, Mapping) and "default" in item:
                default = self.compile(f"{where}.default", item["default"], compile_value)
            outputs.append(_Output(name, default))
        return outputs

    def compile(self, where: str, cell: Any, compile: Callable[[Any], _T]) -> _T | None:
        try:
            return compile(cell)
        except ExpressionError as exc:
            self.add(where, str(exc))
            return None

    def cells(
        self, raw: Any, where: str, count: int | None, label: str, compile: Callable[[Any], _T]
    ) -> list[_T | None]:
        if not isinstance(raw, list | tuple):
            self.add(where, f"must be a list with one cell per {label}")
            return []
        if count is not None and len(raw) != count:
            self.add(where, f"has {len(raw)} cells but the table has {count} {label}s")
        return [self.compile(f"{where}[{k}]", cell, compile) for k, cell in enumerate(raw)]

    def rules(self, raw: Any, inputs: int | None, outputs: int | None) -> list[_Rule]:
        if not isinstance(raw, list | tuple) or not raw:
            self.add(".rules", 'must be a non-empty list of {"when": [...], "then": [...]}')
            return []
        rules: list[_Rule] = []
        for index, rule in enumerate(raw):
            where = f".rules[{index}]"
            if not isinstance(rule, Mapping):
                self.add(where, 'must be an object with "when" and "then" lists')
                continue
            tests = self.cells(
                rule.get("when"), f"{where}.when", inputs, "input", compile_unary_test
            )
            results = self.cells(
                rule.get("then"), f"{where}.then", outputs, "output", compile_value
            )
            rules.append(_Rule(tuple(t for t in tests if t), tuple(r for r in results if r)))
        return rules


def compile_table(step: Any, path: str) -> tuple[DecisionTable | None, list[Problem]]:
    """Compile the grid of a DECISION_TABLE step, checking every part.

    ``step`` is the raw step object, of any shape; ``path`` its JSON path (``steps[4]``).
    Returns the table and no problems, or None and every problem found (never raises).
    """
    if not isinstance(step, Mapping):
        return None, [Problem(path, "a DECISION_TABLE step must be an object")]
    step_id = step.get("id")
    compiler = _Compiler(path, step_id if isinstance(step_id, str) else None)
    policy = compiler.hit_policy(step.get("hitPolicy"))
    inputs = compiler.inputs(step.get("inputs"))
    outputs = compiler.outputs(step.get("outputs"))
    input_count = None if inputs is None else len(step["inputs"])
    output_count = None if outputs is None else len(step["outputs"])
    rules = compiler.rules(step.get("rules"), input_count, output_count)
    if compiler.problems or inputs is None or outputs is None:
        return None, compiler.problems
    return DecisionTable(policy, inputs, outputs, rules), []
