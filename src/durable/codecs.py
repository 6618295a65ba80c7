"""Payload codecs: encrypt or compress what durable writes to the database.

``App(codec=...)`` takes an object with ``encode(bytes) -> bytes`` and
``decode(bytes) -> bytes`` (:class:`Codec`) and applies it to every stored argument,
result, signal payload, event, error and flow variable set, on both stores. Two ship
here and compose, applied in the order given (decoding in reverse)::

    app = durable.App(codec=[durable.codecs.Compress(), durable.codecs.Fernet(keys)])

An encoded payload is stored as a JSON string, ``"durable:codec:<base64>"``, so that
every stored text stays JSON; readers without the codec (the CLI without ``--app``, a
REST server started without the App) show ``"encoded"`` instead. See ``docs/values.md``.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from .errors import ConfigurationError, SerializationError
from .serde import ENCODED, ENCODED_PREFIX, is_encoded

PREFIX = ENCODED_PREFIX


@runtime_checkable
class Codec(Protocol):
    """Turns the bytes of a stored payload into other bytes and back."""

    def encode(self, data: bytes) -> bytes: ...

    def decode(self, data: bytes) -> bytes: ...


class Chain:
    """Several codecs in a row: ``encode`` applies them in order, ``decode`` in reverse."""

    def __init__(self, *codecs: Codec) -> None:
        for codec in codecs:
            _check(codec)
        self.codecs = codecs

    def encode(self, data: bytes) -> bytes:
        for codec in self.codecs:
            data = codec.encode(data)
        return data

    def decode(self, data: bytes) -> bytes:
        for codec in reversed(self.codecs):
            data = codec.decode(data)
        return data

    def __repr__(self) -> str:
        return f"Chain({', '.join(map(repr, self.codecs))})"


class Compress:
    """zlib at ``level`` for payloads of at least ``threshold`` bytes; smaller ones are
    stored as they are (compressing them would make them larger)."""

    _RAW = b"\x00"
    _ZLIB = b"\x01"

    def __init__(self, level: int = 6, *, threshold: int = 1024) -> None:
        if not isinstance(level, int) or not 0 <= level <= 9:
            raise ConfigurationError(f"Compress(level=) must be 0 to 9, got {level!r}")
        if not isinstance(threshold, int) or threshold < 0:
            raise ConfigurationError(f"Compress(threshold=) must be >= 0, got {threshold!r}")
        self.level = level
        self.threshold = threshold

    def encode(self, data: bytes) -> bytes:
        if len(data) < self.threshold:
            return self._RAW + data
        return self._ZLIB + zlib.compress(data, self.level)

    def decode(self, data: bytes) -> bytes:
        flag, body = data[:1], data[1:]
        if flag == self._RAW:
            return body
        if flag == self._ZLIB:
            return zlib.decompress(body)
        raise ValueError("not a payload written by durable.codecs.Compress")

    def __repr__(self) -> str:
        return f"Compress(level={self.level}, threshold={self.threshold})"


class Fernet:
    """Authenticated encryption (``cryptography``'s Fernet: AES-128-CBC and HMAC-SHA256).

    ``keys`` is one key or several (``cryptography.fernet.Fernet.generate_key()``, 32
    url-safe base64-encoded bytes). Payloads are encrypted with the first key and
    decrypted with any of them: to rotate, put the new key first and keep the old ones
    until no stored payload needs them. Needs ``pip install 'durable[crypto]'``.
    """

    def __init__(self, keys: str | bytes | Sequence[str | bytes]) -> None:
        try:
            from cryptography import fernet
        except ImportError:  # pragma: no cover - the crypto extra is part of dev
            raise ConfigurationError(
                "durable.codecs.Fernet needs the cryptography package: "
                "pip install 'durable[crypto]'"
            ) from None
        listed = [keys] if isinstance(keys, str | bytes) else list(keys)
        if not listed:
            raise ConfigurationError("durable.codecs.Fernet needs at least one key")
        ciphers = []
        for index, key in enumerate(listed):
            try:
                ciphers.append(fernet.Fernet(key))
            except (ValueError, TypeError, binascii.Error) as exc:
                raise ConfigurationError(
                    f"durable.codecs.Fernet: key {index} is not a Fernet key "
                    f"(32 url-safe base64-encoded bytes): {exc}"
                ) from None
        self._fernet = fernet.MultiFernet(ciphers)
        self._invalid: type[Exception] = fernet.InvalidToken
        self.key_count = len(ciphers)

    def encode(self, data: bytes) -> bytes:
        token: bytes = self._fernet.encrypt(data)
        return token

    def decode(self, data: bytes) -> bytes:
        try:
            plain: bytes = self._fernet.decrypt(data)
        except self._invalid:
            raise ValueError(
                "the payload was not encrypted with any of the Fernet keys given (or was altered)"
            ) from None
        return plain

    def __repr__(self) -> str:
        return f"Fernet(<{self.key_count} key{'s' if self.key_count != 1 else ''}>)"


def build(codec: Codec | Sequence[Codec] | None) -> Codec | None:
    """The codec ``App(codec=)`` was given: one, a list (a :class:`Chain`), or None."""
    if codec is None:
        return None
    if isinstance(codec, list | tuple):
        return Chain(*codec) if len(codec) != 1 else _check(codec[0])
    return _check(codec)


def _check(codec: Any) -> Codec:
    if not isinstance(codec, Codec):
        raise ConfigurationError(
            f"a payload codec needs encode(bytes) -> bytes and decode(bytes) -> bytes, "
            f"got {codec!r}"
        )
    return codec


def encode_text(codec: Codec, text: str) -> str:
    """The stored form of payload ``text``: a JSON string holding the encoded bytes."""
    data = codec.encode(text.encode("utf-8", "surrogatepass"))
    return PREFIX + base64.b64encode(data).decode("ascii") + '"'


__all__ = [
    "ENCODED",
    "Chain",
    "Codec",
    "Compress",
    "Fernet",
    "build",
    "decode_text",
    "encode_text",
    "is_encoded",
]


def decode_text(codec: Codec, text: str) -> str:
    """The payload text of a stored form; other text is returned as it is.

    Raises:
        durable.SerializationError: the payload cannot be decoded with ``codec`` (another
            key, a damaged value).
    """
    if not text.startswith(PREFIX):
        return text
    try:
        data = base64.b64decode(text[len(PREFIX) : -1], validate=True)
        return codec.decode(data).decode("utf-8", "surrogatepass")
    except (ValueError, zlib.error, UnicodeDecodeError) as exc:
        raise SerializationError(
            f"a stored payload cannot be decoded with {codec!r}: {exc}"
        ) from None
