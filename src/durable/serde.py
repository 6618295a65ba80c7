"""Converting arguments and results to their stored JSON form and back.

Each workflow and activity gets a :class:`CallCodec` built from its type hints: values are
validated and converted by pydantic (models, dataclasses, datetimes, UUIDs round-trip),
stored as JSON text (readable in the database), and converted back to the annotated types
when read. A value that cannot be stored raises :class:`SerializationError` naming the
workflow or activity and the argument, before anything runs.

A workflow or activity declared with ``serializer="pickle"`` gets a :class:`PickleCodec`
instead: values are stored with cloudpickle, wrapped in a JSON object
(``{"durable:pickle": "<base64>"}``) so that every stored text stays JSON. Pickled text is
loaded only by a codec of a workflow or activity that opted in; JSON text still reads.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import inspect
import json
import typing
from collections.abc import Callable
from functools import cached_property
from typing import Any

import pydantic
from pydantic_core import PydanticSerializationError

from .errors import SerializationError

_ANY: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(Any)

PICKLE_HINT = (
    "; values without a JSON form can be stored with cloudpickle: pass serializer='pickle' "
    "to @durable.workflow, @durable.activity or durable.App (docs/values.md)"
)
_PICKLED = '{"durable:pickle":"'


_UNCHANGED_BY: dict[Any, frozenset[type]] = {
    Any: frozenset({int, str, bool, type(None)}),
    int: frozenset({int}),
    str: frozenset({str}),
    bool: frozenset({bool}),
}
"""The value types that a type hint's validation and JSON conversion give back unchanged:
a value of exactly one of them needs no pydantic call (the hot path of small arguments)."""


def _unchanged(hint: Any) -> frozenset[type]:
    try:
        return _UNCHANGED_BY.get(hint, frozenset())
    except TypeError:  # an unhashable hint
        return frozenset()


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(value: Any) -> str:
    """Compact JSON text of an already JSON-compatible value, always storable as UTF-8.

    A string holding a lone surrogate (``"\\ud800"``) cannot be encoded in UTF-8, so no
    database would take it: such text is written with ASCII escapes instead, which JSON
    reads back to the same string.
    """
    kind = type(value)
    if kind is int:
        return int.__repr__(value)
    if value is None or kind is bool:
        return "null" if value is None else "true" if value else "false"
    text = _ENCODER.encode(value)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(value, separators=(",", ":"))
    return text


def loads(text: str) -> Any:
    return json.loads(text)


ENCODED_PREFIX = '"durable:codec:'
"""How a payload stored through ``App(codec=)`` starts (``durable.codecs``)."""
ENCODED = "encoded"
"""What a reader without the App's codec shows in place of an encoded value."""


def is_encoded(text: str | None) -> bool:
    """Whether ``text`` is a payload stored through a codec (and not decoded)."""
    return text is not None and text.startswith(ENCODED_PREFIX)


def shown(text: str) -> Any:
    """The value of stored ``text`` for display: ``"encoded"`` when no codec decoded it."""
    return ENCODED if text.startswith(ENCODED_PREFIX) else json.loads(text)


def encode_any(value: Any, what: str) -> str:
    """JSON text of a value with no declared type (signal payloads, untyped results)."""
    try:
        return dumps(_ANY.dump_python(value, mode="json"))
    except (PydanticSerializationError, ValueError, TypeError) as exc:
        raise SerializationError(f"{what} cannot be stored as JSON: {exc}{PICKLE_HINT}") from None


def fingerprint(text: str) -> str:
    """A short, stable digest of a stored argument list."""
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _first_problem(exc: pydantic.ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{err['msg']}" + (f" at {where}" if where else "")


class CallCodec:
    """Converts the arguments and the result of one workflow or activity function."""

    def __init__(self, fn: Callable[..., Any], owner: str, *, skip_first: bool) -> None:
        self._fn = fn
        self.owner = owner
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        self.signature = sig.replace(parameters=params[1:] if skip_first else params)

    @cached_property
    def _hints(self) -> dict[str, Any]:
        try:
            return typing.get_type_hints(self._fn, include_extras=True)
        except Exception as exc:  # unresolvable forward references
            raise SerializationError(f"{self.owner}: cannot resolve type hints: {exc}") from None

    @cached_property
    def _adapters(self) -> dict[str, pydantic.TypeAdapter[Any]]:
        adapters: dict[str, pydantic.TypeAdapter[Any]] = {}
        for name, param in self.signature.parameters.items():
            hint = self._hints.get(name, Any)
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                hint = list[hint]  # type: ignore[valid-type]
            elif param.kind is inspect.Parameter.VAR_KEYWORD:
                hint = dict[str, hint]  # type: ignore[valid-type]
            adapters[name] = pydantic.TypeAdapter(hint)
        return adapters

    @cached_property
    def _result_adapter(self) -> pydantic.TypeAdapter[Any]:
        hint = self._hints.get("return", Any)
        return _ANY if hint is Any else pydantic.TypeAdapter(hint)

    @cached_property
    def _positional(self) -> tuple[str, ...] | None:
        """The parameter names, when every parameter can be passed by position."""
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        params = self.signature.parameters.values()
        if all(param.kind in kinds for param in params):
            return tuple(self.signature.parameters)
        return None

    @cached_property
    def _unchanged_args(self) -> dict[str, frozenset[type]]:
        """Per parameter, the value types stored as they are (see ``_UNCHANGED_BY``)."""
        unchanged = {}
        for name, param in self.signature.parameters.items():
            plain = param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
            unchanged[name] = _unchanged(self._hints.get(name, Any)) if plain else frozenset()
        return unchanged

    @cached_property
    def _unchanged_result(self) -> frozenset[type]:
        return _unchanged(self._hints.get("return", Any))

    def fingerprint(self, text: str) -> str | None:
        """The digest replay compares the arguments ``text`` by (None: not compared)."""
        return fingerprint(text)

    def encode_args(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """Validate a call's arguments against the signature; return their JSON text."""
        names = self._positional
        if names is not None and not kwargs and len(args) == len(names):
            arguments = dict(zip(names, args, strict=True))
        else:
            try:
                arguments = self.signature.bind(*args, **kwargs).arguments
            except TypeError as exc:
                raise SerializationError(
                    f"{self.owner}: {exc}; it takes {self.signature}"
                ) from None
        stored: dict[str, Any] = {}
        unchanged = self._unchanged_args
        for name, value in arguments.items():
            if type(value) in unchanged[name]:
                stored[name] = value
                continue
            adapter = self._adapters[name]
            try:
                valid = adapter.validate_python(value)
                stored[name] = adapter.dump_python(valid, mode="json")
            except pydantic.ValidationError as exc:
                raise SerializationError(
                    f"{self.owner}: argument {name!r} = {_describe(value)} is invalid: "
                    f"{_first_problem(exc)}"
                ) from None
            except (PydanticSerializationError, ValueError, TypeError) as exc:
                raise SerializationError(
                    f"{self.owner}: argument {name!r} = {_describe(value)} cannot be stored "
                    f"as JSON: {exc}{PICKLE_HINT}"
                ) from None
        return dumps(stored)

    def decode_args(self, text: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The positional and keyword arguments stored by :meth:`encode_args`."""
        if is_encoded(text):
            raise SerializationError(
                f"{self.owner}: the stored arguments are encoded by a payload codec this "
                "App does not have: give every worker and client the same App(codec=)"
            )
        stored = loads(text)
        arguments: dict[str, Any] = {}
        unchanged = self._unchanged_args
        for name, value in stored.items():
            if type(value) in unchanged.get(name, ()):
                arguments[name] = value
                continue
            adapter = self._adapters.get(name)
            if adapter is None:
                raise SerializationError(f"{self.owner}: stored argument {name!r} is unknown")
            try:
                arguments[name] = adapter.validate_python(value)
            except pydantic.ValidationError as exc:
                raise SerializationError(
                    f"{self.owner}: stored argument {name!r} no longer matches its type: "
                    f"{_first_problem(exc)}"
                ) from None
        names = self._positional
        if names is not None and len(arguments) == len(names) and tuple(arguments) == names:
            return tuple(arguments.values()), {}
        bound = inspect.BoundArguments(self.signature, arguments)
        return bound.args, bound.kwargs

    def encode_result(self, value: Any) -> str:
        if type(value) in self._unchanged_result:
            return dumps(value)
        try:
            return dumps(self._result_adapter.dump_python(value, mode="json"))
        except (PydanticSerializationError, ValueError, TypeError) as exc:
            raise SerializationError(
                f"{self.owner}: result {_describe(value)} cannot be stored as JSON: "
                f"{exc}{PICKLE_HINT}"
            ) from None

    def decode_result(self, text: str) -> Any:
        value = loads(text)
        if type(value) in self._unchanged_result:
            return value
        try:
            return self._result_adapter.validate_python(value)
        except pydantic.ValidationError as exc:
            raise SerializationError(
                f"{self.owner}: stored result does not match the return type: {_first_problem(exc)}"
            ) from None


def pickle_dumps(value: Any, what: str) -> str:
    """The stored text of ``value`` pickled with cloudpickle (a JSON object)."""
    try:
        import cloudpickle

        data: bytes = cloudpickle.dumps(value)
    except Exception as exc:
        raise SerializationError(f"{what} cannot be pickled: {exc}") from None
    return _PICKLED + base64.b64encode(data).decode("ascii") + '"}'


def is_pickled(text: str) -> bool:
    """Whether ``text`` was written by :func:`pickle_dumps`."""
    return text.startswith(_PICKLED)


def pickle_loads(text: str, what: str) -> Any:
    """The value of a :func:`pickle_dumps` text. Only for text of a trusted store."""
    import pickle

    try:
        data = base64.b64decode(text[len(_PICKLED) : -2], validate=True)
        return pickle.loads(data)
    except (binascii.Error, ValueError) as exc:
        raise SerializationError(f"{what}: the stored pickle is damaged: {exc}") from None
    except Exception as exc:  # a class that is gone, a module that fails to import
        raise SerializationError(f"{what}: the stored pickle cannot be loaded: {exc}") from None


class PickleCodec(CallCodec):
    """Stores arguments and results with cloudpickle (``serializer="pickle"``).

    Arguments are still bound to the signature (a missing or unknown argument fails at
    the call), but not validated against their annotations. Text stored as JSON (a run
    started from the CLI, a result written before the switch) is read as JSON. Pickled
    arguments are not fingerprinted: their bytes may differ between processes.
    """

    def fingerprint(self, text: str) -> str | None:
        return None if is_pickled(text) else fingerprint(text)

    def encode_args(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise SerializationError(f"{self.owner}: {exc}; it takes {self.signature}") from None
        return pickle_dumps(dict(bound.arguments), f"{self.owner}: the arguments")

    def decode_args(self, text: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if not is_pickled(text):
            return super().decode_args(text)
        arguments = pickle_loads(text, f"{self.owner}: the stored arguments")
        bound = inspect.BoundArguments(self.signature, arguments)
        return bound.args, bound.kwargs

    def encode_result(self, value: Any) -> str:
        return pickle_dumps(value, f"{self.owner}: the result")

    def decode_result(self, text: str) -> Any:
        if not is_pickled(text):
            return super().decode_result(text)
        return pickle_loads(text, f"{self.owner}: the stored result")
