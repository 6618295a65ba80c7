"""Determinism guard rails: a warning when workflow code does what replay cannot repeat.

Workflow code runs again on every replay, so it must not read the wall clock, draw
random numbers, do network I/O or sleep on the event loop. A
:class:`~durable.DeterminismWarning` names the call and its replacement (``ctx.now()``,
``ctx.random()``, ``ctx.uuid4()``, an activity, ``ctx.sleep()``). Two detectors; both
watch only code running while the executor steps a workflow
(``_current.workflow_context`` is set) and ignore calls made by durable itself and by
the standard library on its behalf, so activities, clients and durable's own
machinery never trigger them:

- **Network I/O, always on**: an audit hook (``sys.addaudithook``) sees socket
  connections, name lookups and the like. It costs one set lookup per audit event.
- **Clock, randomness, sleeps, in strict mode** (``durable.testing.TestEnv`` turns it
  on; :func:`strict` does it elsewhere): a profile hook, installed only while a workflow
  is stepped, sees calls of ``time.time``, ``datetime.now``, ``random.*``,
  ``uuid.uuid4``, ``os.urandom``, ``secrets``, ``time.sleep`` and ``asyncio.sleep``.
  Profiling makes workflow code several times slower, hence opt-in.

The scheduler separately fails a run that awaits anything but a durable operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import os
import random
import secrets
import site
import sys
import sysconfig
import time
import types
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

from .. import _current
from ..errors import DeterminismWarning

_CLOCK = "replay would read another time; use ctx.now(), which is recorded in the journal"
_RANDOM = "replay would draw another value; use ctx.random(), which is recorded in the journal"
_UUID = "replay would make another id; use ctx.uuid4(), which is recorded in the journal"
_ENTROPY = (
    "replay would draw other bytes; use ctx.random() or ctx.uuid4(), which are recorded in"
    " the journal, or draw them in an activity"
)
_SLEEP = "replay would wait again; use ctx.sleep(), a durable timer"
_NETWORK_FIX = (
    "replay would do it again; move the call into an activity (@durable.activity) and await it"
)

_NETWORK_EVENTS = frozenset(
    {
        "socket.connect",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.getnameinfo",
        "socket.sendto",
        "socket.sendmsg",
        "http.client.connect",
        "urllib.Request",
        "ftplib.connect",
        "smtplib.connect",
        "imaplib.open",
        "poplib.connect",
    }
)


def _targets() -> tuple[dict[Any, tuple[str, str]], dict[types.CodeType, tuple[str, str]]]:
    """The C functions and the Python functions' code that strict mode reports."""
    c_calls: dict[Any, tuple[str, str]] = {
        time.time: ("time.time()", _CLOCK),
        time.time_ns: ("time.time_ns()", _CLOCK),
        _dt.datetime.now: ("datetime.now()", _CLOCK),
        _dt.datetime.utcnow: ("datetime.utcnow()", _CLOCK),
        _dt.datetime.today: ("datetime.today()", _CLOCK),
        _dt.date.today: ("date.today()", _CLOCK),
        os.urandom: ("os.urandom()", _ENTROPY),
        time.sleep: ("time.sleep()", _SLEEP + " (time.sleep blocks the worker meanwhile)"),
    }
    py_calls: dict[types.CodeType, tuple[str, str]] = {
        uuid.uuid1.__code__: ("uuid.uuid1()", _UUID),
        uuid.uuid4.__code__: ("uuid.uuid4()", _UUID),
        asyncio.sleep.__code__: ("asyncio.sleep()", _SLEEP),
    }
    for name in ("token_bytes", "token_hex", "token_urlsafe", "randbelow"):
        py_calls[getattr(secrets, name).__code__] = (f"secrets.{name}()", _ENTROPY)
    for name in random.__all__:
        fn = getattr(random, name)
        if getattr(fn, "__self__", None) is not random._inst:
            continue
        if isinstance(fn, types.BuiltinMethodType):
            c_calls[fn] = (f"random.{name}()", _RANDOM)
        elif isinstance(fn, types.MethodType):
            py_calls[fn.__func__.__code__] = (f"random.{name}()", _RANDOM)
    return c_calls, py_calls


_C_CALLS, _PY_CALLS = _targets()
_RANDOM_CODES = frozenset(
    code for code, (what, _) in _PY_CALLS.items() if what.startswith("random.")
)


def _dirs(*paths: str) -> tuple[str, ...]:
    return tuple(os.path.join(os.path.abspath(p), "") for p in paths if p)


_PATHS = sysconfig.get_paths()
_DURABLE = _dirs(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_STDLIB = _dirs(_PATHS.get("stdlib", ""), _PATHS.get("platstdlib", ""))
_PACKAGES = _dirs(
    *site.getsitepackages(),
    site.getusersitepackages(),
    _PATHS.get("purelib", ""),
    _PATHS.get("platlib", ""),
)


def _is_ours(frame: types.FrameType | None) -> bool:
    """Durable's own code, or the standard library (which durable's code calls)."""
    if frame is None:
        return True
    name = frame.f_code.co_filename
    if name.startswith(_DURABLE) or name.startswith("<frozen "):
        return True
    return name.startswith(_STDLIB) and not name.startswith(_PACKAGES)


def _culprit(frame: types.FrameType | None) -> types.FrameType | None:
    """The frame to blame: the innermost one of user code, else the innermost installed
    package's, else None (durable or the standard library did it)."""
    fallback = None
    while frame is not None:
        name = frame.f_code.co_filename
        if not _is_ours(frame):
            if not name.startswith(_PACKAGES):
                return frame
            fallback = fallback or frame
        frame = frame.f_back
    return fallback


def _warn(frame: types.FrameType | None, did: str, fix: str) -> None:
    host = _current.workflow_context.get()
    if host is None:
        return
    culprit = _culprit(frame)
    if culprit is None:
        return
    info = host.run_info()
    message = f"workflow {info.workflow!r} (run {info.run_id!r}) {did} in workflow code: {fix}"
    module_globals = culprit.f_globals
    warnings.warn_explicit(
        message,
        DeterminismWarning,
        culprit.f_code.co_filename,
        culprit.f_lineno,
        module=module_globals.get("__name__"),
        registry=module_globals.setdefault("__warningregistry__", {}),
        module_globals=module_globals,
    )


# -- network I/O: always on --------------------------------------------------------------
def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event in _NETWORK_EVENTS and _current.workflow_context.get() is not None:
        target = f" {args[1]!r}" if event == "socket.connect" and len(args) > 1 else ""
        _warn(sys._getframe(1), f"did network I/O ({event}{target})", _NETWORK_FIX)


sys.addaudithook(_audit)


# -- clock, randomness and sleeps: strict mode --------------------------------------------
strict_level = 0
"""Above zero while strict mode is on (``strict()`` blocks nest)."""


@contextlib.contextmanager
def strict() -> Iterator[None]:
    """Report clock reads, random draws and sleeps of workflow code inside this block.

    Process-wide (every App's workers); ``durable.testing.TestEnv`` uses it.
    """
    global strict_level
    strict_level += 1
    try:
        yield
    finally:
        strict_level -= 1


def _profile(frame: types.FrameType, event: str, arg: Any) -> None:
    if event == "c_call":
        found = _C_CALLS.get(arg)
        if found is not None and not _is_ours(frame):
            _warn(frame, f"called {found[0]}", found[1])
    elif event == "call":
        found = _PY_CALLS.get(frame.f_code)
        if found is None or _is_ours(frame.f_back):
            return
        if frame.f_code in _RANDOM_CODES and frame.f_locals.get("self") is not random._inst:
            return  # a seeded random.Random of the workflow's own is deterministic
        _warn(frame.f_back, f"called {found[0]}", found[1])


def watch() -> bool:
    """Start strict checks for the workflow step about to run; False when not started."""
    if strict_level <= 0 or sys.getprofile() is not None:
        return False  # strict mode is off, or a profiler (cProfile, ...) is in charge
    sys.setprofile(_profile)
    return True


def unwatch() -> None:
    sys.setprofile(None)
