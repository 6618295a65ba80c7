"""Exceptions that keep their type across the journal.

An exception an activity or a child run ends with is stored twice: in the portable form
(``durable._wire.StoredError``: type name, message, traceback, causes), which any reader
understands, and as a cloudpickled copy of its class, arguments and attributes, which
only a process that has the class can load. The workflow that awaits the activity or
the child receives an instance of the original class that is also the durable error the
await has always raised (``ActivityError``, ``WorkflowFailed``): ``except CardDeclined``
and ``except ActivityError`` both catch it, on the first execution and on every replay.

When no copy can be made (unpicklable attributes) or loaded (the class is gone, its
``__new__`` refuses the arguments, the two classes cannot be combined), the await raises
the plain durable error, which names the original type.

The copy holds ``(class, args, attributes)`` rather than the exception itself: loading it
builds the instance with ``__new__`` and never calls ``__init__``, so exceptions whose
constructor takes other arguments than ``args`` (a common pickling trap) still load.
"""

from __future__ import annotations

import base64
import binascii
import pickle
from typing import Any, TypeVar

E = TypeVar("E", bound=Exception)

_ORIGINAL = "__durable_original__"
"""On a combined class: the user's exception class it extends."""
_ADDED = "__durable_added__"
"""On a combined class: the attribute names the durable error contributed."""

_CACHED = 1024
_MESSAGE = "__durable_message__"
"""On a rebuilt instance: what ``str()`` returns."""

_combined: dict[tuple[type[BaseException], type[Exception]], type[Exception] | None] = {}


def capture(exc: BaseException) -> str | None:
    """The stored copy of ``exc`` (base64 text), or None when it cannot be pickled."""
    cls = type(exc)
    original: type[BaseException] = getattr(cls, _ORIGINAL, cls)
    added: frozenset[str] = getattr(cls, _ADDED, frozenset())
    try:
        state = {k: v for k, v in vars(exc).items() if k not in added}
    except TypeError:  # no __dict__
        state = {}
    try:
        import cloudpickle

        data: bytes = cloudpickle.dumps((original, exc.args, state))
    except Exception:
        return None
    return base64.b64encode(data).decode("ascii")


def rebuild(copy: str, template: E) -> E | None:
    """An instance of the captured class that is also a ``type(template)``.

    It carries the original's ``args`` and attributes, the attributes of ``template`` the
    original does not have, and ``str(template)`` as its ``str()`` (the message that
    names the activity or run, as the plain error's does). None when the copy cannot be
    loaded or the classes cannot be combined.
    """
    try:
        original, args, state = pickle.loads(base64.b64decode(copy, validate=True))
    except (binascii.Error, ValueError, TypeError):
        return None
    except Exception:  # the class is gone, its module fails to import, ...
        return None
    if not isinstance(original, type) or not issubclass(original, Exception):
        return None
    base = type(template)
    cls = _combine(original, base, frozenset(vars(template)))
    if cls is None:
        return None
    try:
        obj: Any = cls.__new__(cls, *args)
        obj.args = tuple(args)
        fields = dict(vars(template))
        fields.update(state)
        fields[_MESSAGE] = str(template)
        obj.__dict__.update(fields)
    except Exception:
        return None
    result: E = obj
    return result


def _combine(original: type[Exception], base: type[E], added: frozenset[str]) -> type[E] | None:
    if issubclass(original, base):
        return None  # already the durable error: the plain one says as much
    key = (original, base)
    if key not in _combined:
        if len(_combined) >= _CACHED:  # classes loaded by value are new objects each time
            _combined.clear()
        try:
            combined = type(
                original.__name__,
                (original, base),
                {
                    "__module__": original.__module__,
                    "__qualname__": original.__qualname__,
                    "__doc__": original.__doc__,
                    _ORIGINAL: original,
                    _ADDED: added | {_MESSAGE},
                    "__str__": _message,
                },
            )
        except TypeError:  # incompatible layouts (two built-in bases), a metaclass clash
            combined = None
        _combined[key] = combined
    found: type[E] | None = _combined[key]  # type: ignore[assignment]
    return found


def _message(self: BaseException) -> str:
    text: str = self.__dict__.get(_MESSAGE, "")
    return text
