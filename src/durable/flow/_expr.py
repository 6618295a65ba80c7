"""The sandboxed expression language of JSON flows.

An expression such as ``${amount} > 1000 && #customer.tier == 'GOLD'`` is compiled once. A
small scanner rewrites the engine spellings into Python syntax, leaving string literals
alone: ``&&``/``||``/``!`` become ``and``/``or``/``not``, ``#name`` becomes ``name``,
``${...}`` becomes ``(...)`` and ``true``/``false``/``null`` become ``True``/``False``/``None``.
The text is parsed once with :func:`ast.parse` (after the length check), every node is
checked against a whitelist and the size limits, and the tree is kept. Evaluation walks
the kept tree with a :class:`simpleeval.SimpleEval` subclass in which names resolve only
from the variables, ``a.b`` looks up key ``"b"`` in mapping ``a`` (never :func:`getattr`),
the only calls are ``len(x)`` and ``contains(collection, element)``, and every operator
checks the types of its operands before touching them.

Choices the format leaves open:

- ``&&``, ``||`` and ``!`` take booleans only (no truthiness), so they always give one;
  ``!`` has the precedence of Python's ``not``: ``!a == b`` means ``!(a == b)``.
- ``- * / %`` take numbers; ``+`` adds numbers or joins two strings or two lists. There
  is no repetition (``'x' * 3`` is a type error); lengths and integers are bounded.
- ``< <= > >=`` compare two numbers or two strings; ``==`` is Python equality (``1 == 1.0``).
- No subscripts, list literals, conditional expressions, ``is`` or ``**``. Keys that are
  not identifiers, or are Python keywords, cannot be reached with ``a.b``.
- A value string that starts with ``${`` and ends with ``}`` is an expression as a whole
  (``"${a} + ${b}"`` adds); any other string is a literal.
"""

from __future__ import annotations

import ast
import functools
import operator
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from simpleeval import MAX_STRING_LENGTH, SimpleEval

from ..errors import ExpressionError

MAX_SOURCE_LENGTH = 2000
"""The longest expression accepted, in characters."""
MAX_DEPTH = 50
"""The deepest nesting (of brackets, or of syntax-tree nodes) accepted."""
MAX_NODES = 500
"""The most syntax-tree nodes one expression may have."""
_MAX_INT_BITS = 4096  # arithmetic may not build integers larger than this

_WORDS = {"true": "True", "false": "False", "null": "None"}


class _Fault(Exception):
    """An evaluation failure, turned into an ExpressionError that names the expression."""

    def __init__(self, kind: str, message: str, node: ast.AST | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.node = kind, message, node


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(kind: str, source: str, detail: str) -> NoReturn:
    raise ExpressionError(kind, f"{detail} in expression {_shorten(source)!r}", source)


def _is_mapping(value: Any) -> bool:
    # type() and issubclass() read the class only; isinstance() would ask the value for
    # its __class__, an attribute access on a user object.
    kind = type(value)
    return kind is dict or issubclass(kind, Mapping)


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def type_name(value: Any) -> str:
    """The JSON name of a value's type, for messages (never looks inside the value)."""
    if _is_number(value):
        return "number"
    names = {str: "string", bool: "boolean", type(None): "null", list: "list", tuple: "list"}
    return names.get(type(value)) or ("object" if _is_mapping(value) else type(value).__name__)


def comparable(left: Any, right: Any) -> bool:
    """True when ``<`` and the like may compare the two: two numbers or two strings."""
    if _is_number(left):
        return _is_number(right)
    return type(left) is str and type(right) is str


def _bounded(value: Any) -> Any:
    if type(value) is int and value.bit_length() > _MAX_INT_BITS:
        raise _Fault("too_complex", f"a number larger than 2**{_MAX_INT_BITS} came up")
    return value


def _arithmetic(symbol: str, apply: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def checked(left: Any, right: Any) -> Any:
        if not (_is_number(left) and _is_number(right)):
            got = f"{type_name(left)} and {type_name(right)}"
            raise _Fault("type", f"'{symbol}' needs numbers, got {got}")
        if symbol in "/%" and right == 0:
            raise _Fault("division", f"{'division' if symbol == '/' else 'modulo'} by zero")
        try:
            return _bounded(apply(left, right))
        except OverflowError:
            raise _Fault("too_complex", f"the result of '{symbol}' is too large") from None

    return checked


def _add(left: Any, right: Any) -> Any:
    if _is_number(left) and _is_number(right):
        return _bounded(left + right)
    if type(left) is type(right) and type(left) in (str, list):
        if len(left) + len(right) > MAX_STRING_LENGTH:
            raise _Fault("too_complex", f"'+' would build more than {MAX_STRING_LENGTH} items")
        return left + right
    raise _Fault("type", f"cannot add {type_name(left)} and {type_name(right)}")


def _ordering(symbol: str, apply: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def checked(left: Any, right: Any) -> bool:
        if not comparable(left, right):
            got = f"{type_name(left)} with {type_name(right)}"
            raise _Fault("type", f"cannot compare {got} using '{symbol}'")
        return apply(left, right)

    return checked


def _equal(left: Any, right: Any) -> bool:
    result = left == right
    if result is True or result is False:
        return result
    raise _Fault("type", f"cannot compare {type_name(left)} with {type_name(right)}")


def _contains(collection: Any, element: Any) -> bool:
    kind = type(collection)
    if kind is str:
        if type(element) is not str:
            raise _Fault("type", f"'in' a string needs a string, got {type_name(element)}")
        return element in collection
    if kind is list or kind is tuple:
        return any(item is element or _equal(item, element) for item in collection)
    if kind in (set, frozenset) or _is_mapping(collection):
        try:
            return element in collection
        except TypeError:
            raise _Fault("type", f"a {type_name(element)} cannot be a key") from None
    raise _Fault("type", f"'in' needs a list, string or object, got {type_name(collection)}")


def _length(value: Any) -> int:
    if type(value) in (str, list, tuple, set, frozenset) or _is_mapping(value):
        return len(value)
    raise _Fault("type", f"len() needs a string, list or object, got {type_name(value)}")


def _unary(symbol: str, apply: Callable[[Any], Any], accept: Callable[[Any], bool]) -> Any:
    def checked(operand: Any) -> Any:
        if not accept(operand):
            raise _Fault("type", f"'{symbol}' cannot take a {type_name(operand)}")
        return apply(operand)

    return checked


_OPERATORS: dict[type[ast.AST], Callable[..., Any]] = {
    ast.Add: _add,
    ast.Sub: _arithmetic("-", operator.sub),
    ast.Mult: _arithmetic("*", operator.mul),
    ast.Div: _arithmetic("/", operator.truediv),
    ast.Mod: _arithmetic("%", operator.mod),
    ast.Eq: _equal,
    ast.NotEq: lambda left, right: not _equal(left, right),
    ast.Lt: _ordering("<", operator.lt),
    ast.LtE: _ordering("<=", operator.le),
    ast.Gt: _ordering(">", operator.gt),
    ast.GtE: _ordering(">=", operator.ge),
    ast.In: lambda element, collection: _contains(collection, element),
    ast.NotIn: lambda element, collection: not _contains(collection, element),
    ast.Not: _unary("!", operator.not_, lambda value: type(value) is bool),
    ast.USub: _unary("-", operator.neg, _is_number),
    ast.UAdd: _unary("+", operator.pos, _is_number),
}
_FUNCTIONS: dict[str, tuple[Callable[..., Any], int]] = {
    "len": (_length, 1),
    "contains": (_contains, 2),
}


class _Evaluator(SimpleEval):  # type: ignore[misc]
    """Walks a validated tree. One instance per thread, pointed at each call's variables."""

    def __init__(self) -> None:
        functions = {name: function for name, (function, _) in _FUNCTIONS.items()}
        super().__init__(operators=dict(_OPERATORS), functions=functions, names={})
        self.nodes = {
            ast.Constant: self._eval_constant,
            ast.Name: self._eval_name,
            ast.Attribute: self._eval_attribute,
            ast.UnaryOp: self._eval_unaryop,
            ast.BinOp: self._eval_binop,
            ast.BoolOp: self._eval_boolop,
            ast.Compare: self._eval_compare,
            ast.Call: self._eval_call,
        }

    def _eval(self, node: ast.expr) -> Any:
        # simpleeval rescans every intermediate result for forbidden functions, recursing
        # into containers: O(size of the data) per node, and it inspects user objects. Here
        # names come only from the variables and the only callables are len and contains.
        try:
            return self.nodes[type(node)](node)
        except _Fault as fault:
            fault.node = fault.node or node
            raise

    def _eval_name(self, node: ast.Name) -> Any:
        try:
            return self.names[node.id]
        except KeyError:
            raise _Fault("undefined", f"undefined variable '{node.id}'", node) from None

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        container = self._eval(node.value)
        if not _is_mapping(container):
            raise _Fault("type", f"cannot read field '{node.attr}' of a {type_name(container)}")
        try:
            return container[node.attr]
        except KeyError:
            path, base = [node.attr], node.value
            while isinstance(base, ast.Attribute):
                path.append(base.attr)
                base = base.value
            path.append(base.id if isinstance(base, ast.Name) else "(...)")
            dotted = ".".join(reversed(path))
            raise _Fault("undefined", f"undefined variable '{dotted}'", node) from None

    def _eval_boolop(self, node: ast.BoolOp) -> bool:
        stop = isinstance(node.op, ast.Or)  # `or` stops at the first true, `and` at a false
        for operand in node.values:
            value = self._eval(operand)
            if type(value) is not bool:
                symbol = "||" if stop else "&&"
                raise _Fault("type", f"'{symbol}' needs booleans, got {type_name(value)}", operand)
            if value is stop:
                return stop
        return not stop


_local = threading.local()


def _evaluator() -> _Evaluator:
    try:
        evaluator: _Evaluator = _local.evaluator
    except AttributeError:
        evaluator = _local.evaluator = _Evaluator()
    return evaluator


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled expression: parsed once, evaluated many times, never changed.

    Example::

        rule = compile_expression("#score >= 700 && 'VIP' in user.tags")
        rule.evaluate_bool({"score": 720, "user": {"tags": ["VIP"]}})  # True
    """

    source: str
    _text: str = field(repr=False, compare=False)
    _positions: tuple[int, ...] = field(repr=False, compare=False)
    _tree: ast.expr = field(repr=False, compare=False)
    _names: frozenset[str] = field(repr=False, compare=False)

    @property
    def references(self) -> frozenset[str]:
        """The top-level variable names the expression reads."""
        return self._names

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        """The value of the expression over ``variables``.

        Raises:
            ExpressionError: an undefined variable, a type mismatch, a division by zero or a
                result that grew too large; ``kind`` says which.
        """
        evaluator = _evaluator()
        previous = evaluator.names  # restored, so that nothing keeps a run's variables alive
        evaluator.names = variables
        try:
            return evaluator.eval(self.source, previously_parsed=self._tree)
        except _Fault as fault:
            raise self._error(fault.kind, fault.message, fault.node) from None
        except (RecursionError, MemoryError, OverflowError) as exc:
            raise self._error("too_complex", f"evaluation failed ({type(exc).__name__})") from exc
        except Exception as exc:  # a mapping or value handed in by the caller misbehaved
            raise self._error("type", f"evaluation failed ({type(exc).__name__})") from exc
        finally:
            evaluator.names = previous

    def evaluate_bool(self, variables: Mapping[str, Any]) -> bool:
        """The value of the expression, which must be ``true`` or ``false``.

        Raises:
            ExpressionError: as :meth:`evaluate`, or ``kind="boolean"`` for another result.
        """
        result = self.evaluate(variables)
        if type(result) is not bool:
            message = f"expression {_shorten(self.source)!r} must give true or false, got"
            raise ExpressionError("boolean", f"{message} {type_name(result)}", self.source)
        return result

    def _error(self, kind: str, message: str, node: ast.AST | None = None) -> ExpressionError:
        where = self._snippet(node) if kind != "undefined" else ""
        if where and where != self.source.strip():
            message = f"{message} at {_shorten(where, 60)!r}"
        return ExpressionError(
            kind, f"{message} in expression {_shorten(self.source)!r}", self.source
        )

    def _snippet(self, node: ast.AST | None) -> str:
        """The original text of ``node`` (whose offsets count UTF-8 bytes of the text)."""
        if not isinstance(node, ast.expr) or node.end_col_offset is None:
            return ""
        encoded = self._text.encode()
        start = len(encoded[: node.col_offset].decode(errors="ignore"))
        end = len(encoded[: node.end_col_offset].decode(errors="ignore"))
        if not 0 <= start < end <= len(self._positions):
            return ""
        return self.source[self._positions[start] : self._positions[end - 1] + 1].strip()


def _syntax(source: str, column: int, detail: str) -> NoReturn:
    message = f"syntax error at column {column} of {_shorten(source)!r}: {detail}"
    raise ExpressionError("syntax", message, source)


def string_end(text: str, start: int) -> int:
    """The index just past the string literal whose quote is at ``start``.

    Raises:
        ExpressionError: the literal is not closed on its line.
    """
    quote, index = text[start], start + 1
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] not in "\r\n":
            index += 2
        elif char == quote:
            return index + 1
        elif char in "\\\r\n":
            break
        else:
            index += 1
    _syntax(text, start + 1, "unterminated string literal")


def _name_end(source: str, index: int) -> int:
    while index < len(source) and (source[index].isalnum() or source[index] == "_"):
        index += 1
    return index


def _translate(source: str) -> tuple[str, list[int]]:
    """Python text for ``source``, and for each of its characters the index it came from."""
    out: list[str] = []
    where: list[int] = []
    groups: list[bool] = []  # one per open brace: whether ``${`` opened it
    depth, index, previous = 0, 0, ""

    def emit(text: str, at: int, verbatim: bool = False) -> None:
        out.append(text)
        where.extend(range(at, at + len(text)) if verbatim else [at] * len(text))

    while index < len(source):
        char, start = source[index], index
        index += 1
        if char in "'\"":
            index = string_end(source, start)
            emit(source[start:index], start, verbatim=True)
        elif source.startswith(("&&", "||"), start):
            emit(" and " if char == "&" else " or ", start)
            index += 1
        elif char == "!" and not source.startswith("!=", start):
            emit(" not ", start)
        elif char == "#":
            if index == len(source) or not (source[index].isalpha() or source[index] == "_"):
                _syntax(source, start + 1, "'#' must be followed by a variable name")
            index = _name_end(source, index)
            emit(source[start + 1 : index], start + 1, verbatim=True)
        elif char.isalpha() or char == "_":
            index = _name_end(source, index)
            word = source[start:index]
            # After a dot the word is a field name: `result.null` reads the key "null".
            emit(word if previous == "." else _WORDS.get(word, word), start, verbatim=True)
        elif char.isdigit():
            while index < len(source) and (source[index].isalnum() or source[index] in "._"):
                index += 1
            emit(source[start:index], start, verbatim=True)
        elif source.startswith("${", start):
            if source[start + 2 :].lstrip().startswith("}"):
                _syntax(source, start + 1, "'${}' is empty")
            groups.append(True)
            emit("(", start)
            index += 1
        else:
            if char == "{":
                groups.append(False)
            closes_group = char == "}" and bool(groups) and groups.pop()
            emit(")" if closes_group else " " if char.isspace() else char, start)
        depth += (char in "([{" or source.startswith("${", start)) - (char in ")]}")
        if depth > MAX_DEPTH:
            _fail("too_complex", source, f"brackets nested more than {MAX_DEPTH} deep")
        previous = previous if char.isspace() else source[index - 1]
    text = "".join(out)
    blanks = len(text) - len(text.lstrip())  # Python would read leading blanks as an indent
    return text[blanks:], where[blanks:]


_SYMBOLS = {ast.Pow: "**", ast.FloorDiv: "//", ast.MatMult: "@", ast.BitAnd: "&",
            ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
            ast.Invert: "~"}  # fmt: skip
_UNSUPPORTED = {ast.Subscript: "subscripts (x[...])", ast.List: "list literals",
                ast.Tuple: "tuples", ast.Dict: "object literals", ast.Set: "set literals",
                ast.Lambda: "lambdas", ast.IfExp: "conditional expressions",
                ast.ListComp: "comprehensions", ast.SetComp: "comprehensions",
                ast.DictComp: "comprehensions", ast.GeneratorExp: "comprehensions",
                ast.NamedExpr: "assignments", ast.JoinedStr: "f-strings",
                ast.Starred: "unpacking (*x)"}  # fmt: skip


def _check_node(node: ast.expr, source: str) -> None:
    """Reject, before anything runs, what the language leaves out."""
    match node:
        case ast.Name() | ast.BoolOp():
            pass
        case ast.Constant(value=value):
            if type(value) not in (int, float, str, bool, type(None)):
                _fail("forbidden", source, f"{type(value).__name__} literals are not supported")
        case ast.Attribute(attr=attr):
            if attr.startswith("_"):
                _fail(
                    "forbidden",
                    source,
                    f"access to '{attr}' (a name starting with _) is not allowed",
                )
        case ast.UnaryOp(op=op) | ast.BinOp(op=op) if type(op) not in _OPERATORS:
            _fail("forbidden", source, f"operator '{_SYMBOLS.get(type(op))}' is not supported")
        case ast.UnaryOp() | ast.BinOp():
            pass
        case ast.Compare(ops=ops):
            if any(type(op) not in _OPERATORS for op in ops):
                _fail("forbidden", source, "'is' is not supported; use == or !=")
        case ast.Call(func=ast.Name(id=name), args=args, keywords=[]) if name in _FUNCTIONS:
            arity = _FUNCTIONS[name][1]
            if len(args) != arity:
                detail = f"{name}() takes {arity} argument{'s' * (arity > 1)}, got {len(args)}"
                _fail("forbidden", source, detail)
        case ast.Call():
            _fail("forbidden", source, "the only calls allowed are len(x) and contains(c, x)")
        case _:
            kind = _UNSUPPORTED.get(type(node), type(node).__name__)
            _fail("forbidden", source, f"{kind} not supported")


def _validate(tree: ast.expr, source: str) -> frozenset[str]:
    """Check every node and the size of the tree; the variable names it reads."""
    names: set[str] = set()
    stack, count = [(tree, 1)], 0
    while stack:  # a loop, not recursion: the tree may be deep, and this check comes first
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            _fail("too_complex", source, f"more than {MAX_NODES} operands and operators")
        if depth > MAX_DEPTH:
            _fail("too_complex", source, f"operations nested more than {MAX_DEPTH} deep")
        _check_node(node, source)
        if isinstance(node, ast.Name):
            names.add(node.id)
        children = node.args if isinstance(node, ast.Call) else ast.iter_child_nodes(node)
        stack.extend((child, depth + 1) for child in children if isinstance(child, ast.expr))
    return frozenset(names)


@functools.lru_cache(maxsize=4096)
def _compile(source: str) -> Expression:
    if len(source) > MAX_SOURCE_LENGTH:
        _fail("too_complex", source, f"{len(source)} characters (at most {MAX_SOURCE_LENGTH})")
    text, where = _translate(source)
    if not text.strip():
        _syntax(source, 1, "the expression is empty")
    try:
        with warnings.catch_warnings():
            # Python warns about odd literals ('\d', 1and): noise here, where the text is
            # a user's expression; the filter matches the file name given below only.
            warnings.filterwarnings("ignore", module="<expression>")
            # The newline makes Python point past the end, not at 0, when input runs out.
            tree = ast.parse(text + "\n", "<expression>", mode="eval").body
    except SyntaxError as exc:
        offset = min(max((exc.offset or 1) - 1, 0), len(where))
        if offset >= len(where):
            _syntax(source, len(source) + 1, "the expression ends too early")
        opened = "${" if source.startswith("${", where[offset]) else "("  # `${` became `(`
        _syntax(source, where[offset] + 1, exc.msg.replace("'(' was", f"'{opened}' was"))
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, surrogates, ...
        _syntax(source, 1, f"cannot be parsed ({type(exc).__name__})")
    return Expression(source, text, tuple(where), tree, _validate(tree, source))


def not_boolean(expression: Expression) -> str | None:
    """What an expression gives when that is certainly not a boolean, else None.

    A literal other than ``true``/``false``, arithmetic or a sign: none of them can be
    true or false, whatever the variables. A variable, a call, a field, ``in``, a
    comparison, ``!`` or a logical operator may be, and passes.
    """
    match expression._tree:
        case ast.Constant(value=bool()):
            return None
        case ast.Constant(value=value):
            return f"a constant {type_name(value)}"
        case ast.BinOp():
            return "arithmetic, a number or a string"
        case ast.UnaryOp(op=ast.USub() | ast.UAdd()):
            return "a number"
    return None


def compile_expression(source: str) -> Expression:
    """Parse and check ``source`` once; the result evaluates many times.

    Raises:
        ExpressionError: ``kind`` is ``syntax`` (the message gives the column),
            ``forbidden`` (a construct outside the language) or ``too_complex``.
    """
    if not isinstance(source, str):
        detail = f"an expression must be a string, got {type_name(source)}"
        raise ExpressionError("syntax", detail, "")
    return _compile(source)


def is_template(value: Any) -> bool:
    """True for a string that is an expression as a whole: ``${`` ... ``}``."""
    return isinstance(value, str) and len(value) > 2 and value[:2] == "${" and value[-1] == "}"


@dataclass(frozen=True, slots=True)
class Value:
    """A TRANSFORMATION value or a decision-table output cell: a literal or an expression."""

    literal: Any = None
    expression: Expression | None = None

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        """The literal as is, or the expression's result over ``variables``.

        Raises:
            ExpressionError: the expression failed (see :meth:`Expression.evaluate`).
        """
        if self.expression is None:
            return self.literal
        return self.expression.evaluate(variables)


def compile_value(value: Any) -> Value:
    """``"${expr}"`` compiled as an expression; any other JSON value kept as a literal.

    Raises:
        ExpressionError: the expression does not compile (see :func:`compile_expression`).
    """
    if is_template(value):
        return Value(expression=compile_expression(value))
    return Value(literal=value)
