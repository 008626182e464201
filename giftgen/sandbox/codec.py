"""The wire between the trusted parent and sandboxed children: framed JSON messages and plain values.

Contract. Values cross process boundaries only as *plain data*: None, bool, int, float, str, bytes, complex, and
lists, tuples, sets, frozensets and dicts of those; also the standard library's ``Decimal`` and ``Fraction``, dict
views (``keys``, ``values``, ``items``), deques and ``array.array``, which Python compares with plain values and
tests iterate. ``to_wire`` (run in a child, so only a best effort: the program controls that process) turns a Python value into
JSON-able data, tagging what JSON cannot say (a tuple is ``{"t": [...]}``, a set ``{"s": [...]}``, a dict
``{"d": [[k, v], ...]}``, ...). ``from_wire`` (run in the parent
and in the oracle) rebuilds values of builtin types only; anything else the child could not encode arrives as an
``Opaque`` that equals nothing but itself. So a verdict is always computed with the builtin ``==`` of builtin
types, and an object whose ``__eq__`` lies never reaches it. Between the oracle and the program's process
(``rich=True``, never in the parent), numpy, pandas and ``datetime`` values also travel, as typed plain data
(``richwire``): the oracle rebuilds them from data and compares them with the test's own code, in its own process.

Frames are a 4-byte big-endian length and ASCII JSON; ``Channel.recv`` enforces a size cap and a deadline.
"""

from __future__ import annotations

import array
import collections
import decimal
import fractions
import itertools
import json
import math
import operator
import select
import socket
import struct
import sys
import time
from typing import Any

from giftgen.sandbox import richwire
from giftgen.sandbox.wire_error import WireError

MAX_DEPTH = 200


class Opaque:
    """A value the child could not turn into plain data. Equal only to itself."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str):
        self.type_name = str(type_name)[:100]

    def __repr__(self) -> str:
        return f"<unencodable {self.type_name}>"


class OversizeError(WireError):
    """A frame over the channel's size cap, or with more containers or items than that size allows for."""


# ------------------------------------------------------------------------------------------------ values


def to_wire(value: Any, depth: int = 0, rich: bool = False) -> Any:
    """Python value -> JSON-able data (plain types, tagged containers). Subclasses of builtin types are reduced to
    the base type's value (a namedtuple is a tuple, a Counter a dict, an IntEnum an int), as ``==`` would see them.
    ``rich``: numpy, pandas and ``datetime`` values keep their types (see ``richwire``)."""
    if depth > MAX_DEPTH:
        return {"x": "value nested too deeply"}
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is float:
        return value
    if rich and t is not int and t is not list and t is not tuple and t is not dict:
        encoded = richwire.encode(value, depth, lambda v, d: to_wire(v, d, True))
        if encoded is not None:
            return encoded
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        value = int.__index__(value)
    if type(value) is int:
        # big integers travel as hex: str(int) refuses more than 4300 digits, int(hex, 16) has no such limit
        return value if value.bit_length() < 12000 else {"i": hex(value)}
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    d = depth + 1
    if isinstance(value, list):
        return [to_wire(v, d, rich) for v in list.__iter__(value)]
    if isinstance(value, tuple):
        return {"t": [to_wire(v, d, rich) for v in tuple.__iter__(value)]}
    if isinstance(value, dict):
        return {"d": [[to_wire(k, d, rich), to_wire(v, d, rich)] for k, v in dict.items(value)]}
    if isinstance(value, frozenset):
        return {"f": [to_wire(v, d, rich) for v in frozenset.__iter__(value)]}
    if isinstance(value, set):
        return {"s": [to_wire(v, d, rich) for v in set.__iter__(value)]}
    if isinstance(value, (bytes, bytearray)):
        return {"b": bytes(value).decode("latin-1")}
    if isinstance(value, complex):
        return {"c": [complex.__complex__(value).real, complex.__complex__(value).imag]}
    # the standard library's exact numbers, dict views and deques, which Python compares with plain values
    # (Decimal(4) == 4, {}.keys() == set()) and which tests iterate (sorted(d.values()))
    if isinstance(value, decimal.Decimal):
        return {"dec": decimal.Decimal.__str__(value)}
    if isinstance(value, fractions.Fraction):
        return {"fr": [to_wire(value.numerator, d), to_wire(value.denominator, d)]}
    if isinstance(value, _KEYS):
        return {"dk": [to_wire(v, d, rich) for v in value]}
    if isinstance(value, _VALUES):
        return {"dv": [to_wire(v, d, rich) for v in value]}
    if isinstance(value, _ITEMS):
        return {"di": [[to_wire(k, d, rich), to_wire(v, d, rich)] for k, v in value]}
    if isinstance(value, collections.deque):
        return {"dq": [[to_wire(v, d, rich) for v in collections.deque.__iter__(value)], value.maxlen]}
    if isinstance(value, array.array):
        return {"ar": [value.typecode, [to_wire(v, d) for v in array.array.tolist(value)]]}
    module = getattr(t, "__module__", "")
    if module == "numpy" and hasattr(value, "item") and getattr(value, "shape", None) == ():
        # numpy scalars compare equal to Python numbers in every harness; keep that
        return to_wire(value.item(), d)
    return {"x": f"{module}.{t.__qualname__}" if module not in ("builtins", "") else t.__qualname__}


_KEYS, _VALUES, _ITEMS = type({}.keys()), type({}.values()), type({}.items())
_ARRAY_CODES = frozenset("bBuhHiIlLqQfd")
DECIMAL_DIGITS = 4300  # characters of a Decimal's text, and bits of a Fraction's terms (beyond: not plain data)


def from_wire(data: Any, depth: int = 0, rich: bool = False) -> Any:
    """JSON data -> a value made of builtin types only (and ``Opaque``). Raises ``WireError`` on malformed data.
    ``rich``: also numpy, pandas and ``datetime`` values (see ``richwire``; never in the trusted parent)."""
    if depth > MAX_DEPTH + 2:
        raise WireError("value nested too deeply")
    t = type(data)
    if t is str and rich and len(data) <= 200:
        # the test's literals are one object in the release's shared namespace (`x is 'apple'` holds): equal
        # short strings from the other side are one object here too
        return sys.intern(data)
    if data is None or t is bool or t is int or t is float or t is str:
        return data
    d = depth + 1
    if t is list:
        return _items(data, d, rich)
    if t is not dict or len(data) != 1:
        raise WireError(f"malformed value of type {t.__name__}")
    (tag, v), = data.items()
    try:
        if tag == "t" and type(v) is list:
            return tuple(_items(v, d, rich))
        if tag == "s" and type(v) is list:
            return set(_hashable_items(_items(v, d, rich)))
        if tag == "f" and type(v) is list:
            return frozenset(_hashable_items(_items(v, d, rich)))
        if tag == "d" and type(v) is list:
            pairs = []
            for pair in v:
                if type(pair) is not list or len(pair) != 2:
                    raise WireError("malformed dict item")
                pairs.append((from_wire(pair[0], d, rich), from_wire(pair[1], d, rich)))
            _hashable_items([k for k, _ in pairs])
            return dict(pairs)
        if tag == "b" and type(v) is str:
            return v.encode("latin-1")
        if tag == "c" and type(v) is list and len(v) == 2 and all(type(x) in (int, float) for x in v):
            return complex(v[0], v[1])
        if tag == "i" and type(v) is str:
            return int(v, 16)
        if tag == "x" and type(v) is str:
            return Opaque(v)
        if tag == "dec" and type(v) is str and len(v) <= DECIMAL_DIGITS:
            return decimal.Decimal(v)
        if tag == "fr" and type(v) is list and len(v) == 2:
            num, den = (from_wire(x, d) for x in v)
            if type(num) is int and type(den) is int and den > 0 and max(num.bit_length(), den.bit_length()) <= (
                    1 << 16):
                return fractions.Fraction(num, den)
        if tag in ("dk", "dv") and type(v) is list:
            items = _items(v, d, rich)
            return dict.fromkeys(_hashable_items(items)).keys() if tag == "dk" else dict(enumerate(items)).values()
        if tag == "di" and type(v) is list:
            if not all(type(pair) is list and len(pair) == 2 for pair in v):
                raise WireError("malformed dict item")
            pairs = [(from_wire(k, d, rich), from_wire(x, d, rich)) for k, x in v]
            _hashable_items([k for k, _ in pairs])
            return dict(pairs).items()
        if tag == "dq" and type(v) is list and len(v) == 2 and type(v[0]) is list and (
                v[1] is None or (type(v[1]) is int and v[1] >= 0)):
            return collections.deque(_items(v[0], d, rich), v[1])
        if tag == "ar" and type(v) is list and len(v) == 2 and v[0] in _ARRAY_CODES and type(v[1]) is list:
            items = _items(v[1], d, False)
            kind = str if v[0] == "u" else float if v[0] in "fd" else int
            if all(type(x) is kind or (kind is float and type(x) is int) for x in items):
                return array.array(v[0], items)  # an item out of the type's range: OverflowError, malformed
        if rich:
            if tag in richwire.TAGS:
                return richwire.decode(tag, v, depth, lambda x, dd: from_wire(x, dd, True))
    except (TypeError, UnicodeError, OverflowError, ValueError, ArithmeticError) as e:  # unhashable keys, bad bytes
        raise WireError(f"malformed {tag!r} value: {e}") from None
    raise WireError(f"unknown tag {tag!r}")


_JSON_SCALARS = frozenset({type(None), bool, int, float, str})  # what the JSON decoder makes, besides containers


def _items(data: list, depth: int, rich: bool) -> list:
    """The values of a wire list's items. A list of JSON scalars is its own value, checked by type in C: a reply
    of millions of scalars once cost the parent a Python call per item (2 s of CPU per 8 MiB frame)."""
    if not rich and set(map(type, data)) <= _JSON_SCALARS:
        return data
    return [from_wire(v, depth, rich) for v in data]


COLLISION_BUDGET = 100_000  # probes past the first that building one set or dict from a reply may cost


def _hashable_items(items: list) -> list:
    """``items``, once it is clear a set or dict of them is cheap to build: distinct values sharing one hash make
    each insertion linear (a reply of such integers held the parent for minutes), so their count is checked first,
    in O(n log n) on the hashes alone (and in C when no two hashes are equal)."""
    hashes = sorted(map(hash, items))
    if not any(map(operator.eq, hashes, itertools.islice(hashes, 1, None))):  # no two alike: checked in C
        return items
    cost = run = 0
    for i in range(1, len(hashes)):
        run = run + 1 if hashes[i] == hashes[i - 1] else 0
        cost += run
        if cost > COLLISION_BUDGET:
            raise WireError("a set or dict of values with colliding hashes")
    return items


def clip(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short(value: Any, limit: int = 200) -> str:
    """A capped repr for messages: ``repr(value)`` when it fits in ``limit`` characters, else its first characters
    and "...". Builtin containers and strings are written only as far as the limit (a reply of millions of items
    once cost the parent its whole repr, for 200 characters of it); integers too large to write in decimal are
    ``<int of N bits>``."""
    out: list[str] = []
    try:
        _repr_into(value, out, limit + 1, 0)
        text = "".join(out)
    except Exception:  # a value from the wire is plain, but be safe: messages must never raise
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


_BRACKETS = {list: ("[", "]"), tuple: ("(", ")"), set: ("{", "}"), frozenset: ("frozenset({", "})"),
             dict: ("{", "}")}


def _repr_into(value: Any, out: list[str], room: int, depth: int) -> int:
    """Append the pieces of ``repr(value)`` to ``out`` until ``room`` characters are written; the room left."""
    t = type(value)
    brackets = _BRACKETS.get(t)
    if brackets is None or depth > 2 * MAX_DEPTH:
        if t is str or t is bytes:
            text = repr(value[:room])  # the prefix's repr: the same text, as far as it is kept
        elif t is int and value.bit_length() > 14_000:
            text = f"<int of {value.bit_length()} bits>"  # str() refuses more than 4,300 digits
        else:
            text = repr(value)
        out.append(text[:room])
        return room - len(text)
    if not value:
        text = {set: "set()", frozenset: "frozenset()"}.get(t) or brackets[0] + brackets[1]
        out.append(text)
        return room - len(text)
    out.append(brackets[0])
    room -= len(brackets[0])
    for i, item in enumerate(value.items() if t is dict else value):
        if room <= 0:
            return room
        if i:
            out.append(", ")
            room -= 2
        if t is dict:
            room = _repr_into(item[0], out, room, depth + 1)
            out.append(": ")
            room = _repr_into(item[1], out, room - 2, depth + 1)
        else:
            room = _repr_into(item, out, room, depth + 1)
    if t is tuple and len(value) == 1:
        out.append(",")
        room -= 1
    out.append(brackets[1])
    return room - len(brackets[1])


# ------------------------------------------------------------------------------------------------ comparing


def is_floats(x: Any) -> bool:
    """EvalPlus's rule for when a float tolerance applies by default: a float, or a list/tuple of floats."""
    if type(x) is float:
        return True
    if type(x) in (list, tuple):
        return all(type(i) is float for i in x)
    return False


def _close(out: Any, exp: Any, atol: float, rtol: float) -> bool:
    if type(out) in (int, float) and type(exp) in (int, float):
        if math.isnan(out) or math.isnan(exp):
            return False
        if math.isinf(out) or math.isinf(exp):
            return out == exp
        return abs(out - exp) <= atol + rtol * abs(exp)
    if type(out) in (list, tuple) and type(exp) in (list, tuple):
        return len(out) == len(exp) and all(_close(a, b, atol, rtol) for a, b in zip(out, exp, strict=True))
    return out == exp


def values_match(out: Any, exp: Any, atol: float = 0.0, *, float_tolerance: bool = True) -> bool:
    """EvalPlus semantics on plain values: exact ``==``; else, when ``atol`` is set (or the expected value is a
    float or a list of floats, which gets ``atol`` 1e-6), same type, same length and ``allclose`` (rtol 1e-7)."""
    if out == exp:
        return True
    if atol == 0 and float_tolerance and is_floats(exp):
        atol = 1e-6
    if atol == 0 or type(out) is not type(exp):
        return False
    return _close(out, exp, atol, 1e-7)


def json_like(value: Any) -> Any:
    """Tuples as lists, recursively: how a value looks after a trip through JSON (expected outputs stored in JSON
    cannot say tuple, so a returned tuple must compare equal to the stored list)."""
    t = type(value)
    if t in (list, tuple):
        if set(map(type, value)).isdisjoint(_BRACKETS):  # no container inside: checked in C (see ``_items``)
            return value if t is list else list(value)
        return [json_like(v) for v in value]
    if t is dict:
        return {k: json_like(v) for k, v in value.items()}
    return value


# ------------------------------------------------------------------------------------------------ frames


class ChannelClosed(EOFError):
    """The other end closed (or died)."""


class ChannelTimeout(TimeoutError):
    """No complete frame before the deadline."""


# Decode budget: a container costs the decoder some 60-250 bytes (a list, or a tagged dict and its list) for 2-9
# bytes of JSON; a frame may hold one container per CONTAINER_BYTES of its cap, so that decoding a frame costs a
# small multiple of the cap (scalars cost at most ~16x their JSON size). Items (a scalar or a container, in an
# array or an object) cost time: some 0.1 us each to decode, judge and describe, 2 bytes of JSON at least; a frame
# may hold one per ITEM_BYTES of its cap (2.4 million under the default 8 MiB: a reply of 8 MiB of `1,` once cost
# the parent 2.3 s of CPU). Both are counted before decoding, in linear time.
CONTAINER_BYTES = 64
ITEM_BYTES = 4
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[{,')
_CHUNK = 1 << 16


def _structure(body: bytes) -> tuple[int, int]:
    """(containers, items): the number of JSON arrays and objects in ``body``, and of the values in them (commas
    and containers: an upper bound on the values that are not alone in their container), brackets and commas
    inside strings not counted. Linear, in C, and in memory a small multiple of ``body`` (a regular expression over
    strings pushes a backtracking state per escape, some 60 bytes per byte of a reply full of them, and ``re.sub``
    builds a piece per string)."""
    # Escapes first (a backslash pairs with the next byte, from the left), then everything but quotes, brackets
    # and commas; what is left between the 2k-th and (2k+1)-th quote is inside a string.
    bare = body.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    containers = commas = 0
    outside = True
    for start in range(0, len(bare), _CHUNK):
        parts = bare[start : start + _CHUNK].split(b'"')
        kept = b"".join(parts[0 if outside else 1 :: 2])
        containers += kept.count(b"[") + kept.count(b"{")
        commas += kept.count(b",")
        outside = outside == (len(parts) % 2 == 1)
    return containers, containers + commas



_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)  # once (json.dumps with options: per call)
_DECODER = json.JSONDecoder()


def encode_frame(message: Any) -> bytes:
    body = _ENCODER.encode(message).encode("ascii")
    return struct.pack(">I", len(body)) + body


class Channel:
    """Framed JSON over a stream socket. ``recv`` returns the decoded message (plain JSON, no tags resolved).

    ``accept_fds``: keep file descriptors the peer attaches (``fds``); only children accept them, from the parent.
    The parent's channels never do (the kernel closes what a child attaches), so a program cannot fill the
    parent's descriptor table. ``item_budget``: refuse frames with more items than one per ``ITEM_BYTES`` of the
    cap (the parent's channels: what the parent spends per frame stays a small multiple of the cap)."""

    def __init__(self, sock: socket.socket, max_frame: int = 64 << 20, accept_fds: bool = False,
                 item_budget: bool = False):
        self.sock = sock
        self.max_frame = max_frame
        self.item_budget = item_budget
        self.accept_fds = accept_fds
        self.fds: list[int] = []
        self._buf = bytearray()
        self._out = bytearray()  # posted bytes the peer has not taken yet (written while we wait to receive)

    def send(self, message: Any, timeout: float | None = 30.0, fd: int | None = None) -> None:
        """Send a message (after what was posted); ``fd`` travels with its first byte (``SCM_RIGHTS``)."""
        self.flush(None if timeout is None else time.monotonic() + timeout)
        self.sock.settimeout(timeout)
        frame = encode_frame(message)
        try:
            if fd is not None:
                frame = frame[socket.send_fds(self.sock, [frame], [fd]):]
            self.sock.sendall(frame)
        except TimeoutError:
            raise ChannelTimeout("send timed out") from None
        except (BrokenPipeError, ConnectionResetError):
            raise ChannelClosed("peer closed") from None

    def post(self, message: Any) -> None:
        """Send a message without waiting for the peer to take it: what does not fit in the socket's buffer now
        is written while ``recv`` (or ``flush``) waits. A peer that reads only after some work of its own (a
        program's load) then never holds us past the deadline we receive with."""
        self._out += encode_frame(message)
        self._push()

    def _push(self) -> None:
        """Write what fits of the posted bytes now; a closed peer drops them (``recv`` says it closed)."""
        self.sock.settimeout(0.0)  # non-blocking: a socket with a timeout would wait for room first
        while self._out:
            try:
                sent = self.sock.send(self._out[:1 << 20])
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # broken pipe, reset: the peer is gone
                self._out.clear()
                return
            del self._out[:sent]

    def flush(self, deadline: float | None) -> None:
        """Wait until the peer took every posted byte; ``ChannelTimeout`` at the deadline."""
        while self._out:
            self._wait(deadline, readable=False)
            self._push()

    def _wait(self, deadline: float | None, readable: bool) -> bool:
        """Wait until the socket can take posted bytes (or, with ``readable``, has bytes for us); True when it
        is readable."""
        events = select.POLLOUT | (select.POLLIN if readable else 0)
        poller = select.poll()
        poller.register(self.sock.fileno(), events)
        while True:
            if deadline is None:
                ready = poller.poll()
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ChannelTimeout("no reply before the deadline" if readable else "send timed out")
                ready = poller.poll(max(1, math.ceil(remaining * 1000)))
            if ready:
                mask = ready[0][1]
                return bool(mask & (select.POLLIN | select.POLLHUP | select.POLLERR)) and readable

    def _fill(self, n: int, deadline: float | None) -> None:
        while len(self._buf) < n:
            if self._out:
                self._push()
                if self._out and not self._wait(deadline, readable=True):
                    continue
            if deadline is None:
                self.sock.settimeout(None)
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ChannelTimeout("no reply before the deadline")
                self.sock.settimeout(remaining)
            try:
                if self.accept_fds:
                    chunk, fds, _, _ = socket.recv_fds(self.sock, max(65536, n - len(self._buf)), 4)
                    self.fds += fds
                else:
                    chunk = self.sock.recv(max(65536, n - len(self._buf)))
            except TimeoutError:
                raise ChannelTimeout("no reply before the deadline") from None
            except ConnectionResetError:
                raise ChannelClosed("peer reset") from None
            if not chunk:
                raise ChannelClosed("peer closed")
            self._buf += chunk

    def recv(self, deadline: float | None = None) -> Any:
        """The next message; ``deadline`` is a ``time.monotonic()`` value (None: wait forever)."""
        self._fill(4, deadline)
        (n,) = struct.unpack(">I", self._buf[:4])
        if n > self.max_frame:
            raise OversizeError(f"message of {n} bytes exceeds the cap of {self.max_frame}")
        self._fill(4 + n, deadline)
        body = bytes(self._buf[4 : 4 + n])
        del self._buf[: 4 + n]
        if n > CONTAINER_BYTES * 64:
            containers, items = _structure(body)
            if containers > self.max_frame // CONTAINER_BYTES:
                raise OversizeError(f"message of {containers} containers exceeds the budget of "
                                    f"{self.max_frame // CONTAINER_BYTES} (one per {CONTAINER_BYTES} bytes of cap)")
            if self.item_budget and items > self.max_frame // ITEM_BYTES:
                raise OversizeError(f"message of {items} items exceeds the budget of "
                                    f"{self.max_frame // ITEM_BYTES} (one per {ITEM_BYTES} bytes of cap)")
        try:
            return _DECODER.decode(body.decode("ascii"))  # frames are ASCII (UnicodeDecodeError is a ValueError)
        except (ValueError, RecursionError) as e:
            raise WireError(f"malformed message: {e}") from None

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
