"""The packed batch of contract 0.2.0 (`wit/README.md`, "The packed batch").

`process` receives one byte buffer and returns one. `read_input` checks the
whole input (directory, every span, range and index, as the Rust reader
`weir-batch` does) and turns it into `Event`s; `Packer` writes the output
buffer. `write_input` and `read_output` are the other two directions, for
native runs (`weir.testing`) and the SDK's tests.

Little-endian throughout; writers start every table at a multiple of 8 bytes.
"""

import struct
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ._event import Error, Event
from ._routes import Routes

FORMAT = 1
NONE = 0xFFFFFFFF

DATA, EVENTS, HEADERS, STREAMS, OUTPUTS, ROUTES, ERRORS = 1, 2, 3, 4, 5, 6, 7

_HEAD = struct.Struct("<II")
_DIR = struct.Struct("<IIII")
# key span, value span, first header, header count, stream, partition, ts, offset
_EVENT = struct.Struct("<IIIIIIIiqq")
# input, route, key span, value span, first header, header count, ts
_OUTPUT = struct.Struct("<IIIIIIIIq")
_HEADER = struct.Struct("<IIII")
_SPAN = struct.Struct("<II")
_ERROR = struct.Struct("<III")

# The least stride of each kind this reader knows (data: exactly 1).
_INPUT_KINDS = {DATA: 1, EVENTS: _EVENT.size, HEADERS: _HEADER.size, STREAMS: _SPAN.size}
_OUTPUT_KINDS = {
    DATA: 1,
    OUTPUTS: _OUTPUT.size,
    HEADERS: _HEADER.size,
    ROUTES: _SPAN.size,
    ERRORS: _ERROR.size,
}


class FormatError(Error):
    """A buffer that breaks the layout's rules."""


# ------------------------------------------------------------ reading -------


_DIRS: Dict[int, struct.Struct] = {}


def _words(n: int) -> struct.Struct:
    """The struct of `n` little-endian u32s (cached: directories are small)."""
    st = _DIRS.get(n)
    if st is None:
        st = struct.Struct(f"<{n}I")
        if n <= 64:  # what weir writes; a bigger (hostile) one is not kept
            _DIRS[n] = st
    return st


def _directory(buf: bytes, known: Dict[int, int]) -> Dict[int, Tuple[int, int, int]]:
    """The sections of the kinds in `known` as kind -> (offset, count,
    stride), each checked to lie inside `buf`; unknown kinds are skipped."""
    size = len(buf)
    if size < _HEAD.size:
        raise FormatError(f"a {size}-byte buffer has no header")
    fmt, n = _HEAD.unpack_from(buf, 0)
    if fmt != FORMAT:
        raise FormatError(f"unknown batch format {fmt} (this reader knows {FORMAT})")
    if _HEAD.size + n * _DIR.size > size:
        raise FormatError(f"a directory of {n} sections does not fit the {size}-byte buffer")
    words = _words(4 * n).unpack_from(buf, _HEAD.size)
    found: Dict[int, Tuple[int, int, int]] = {}
    for at in range(0, 4 * n, 4):
        kind = words[at]
        least = known.get(kind)
        if least is None:
            continue  # a section this reader does not know
        count, offset, stride = words[at + 1], words[at + 2], words[at + 3]
        if kind in found:
            raise FormatError(f"section {kind} appears twice")
        if stride < least or (least == 1 and stride != 1):
            exact = "" if least == 1 else "at least "
            raise FormatError(f"section {kind} has stride {stride}, it needs {exact}{least}")
        if offset + count * stride > size:
            raise FormatError(
                f"section {kind} ({count} × {stride} bytes at {offset}) is outside "
                f"the {size}-byte buffer"
            )
        found[kind] = (offset, count, stride)
    return found


def _entries(buf: bytes, section: Optional[Tuple[int, int, int]], st: struct.Struct) -> List[tuple]:
    """The entries of a table section, each read to the known prefix."""
    if section is None:
        return []
    offset, count, stride = section
    if stride == st.size:
        return list(st.iter_unpack(memoryview(buf)[offset : offset + count * stride]))
    return [st.unpack_from(buf, offset + i * stride) for i in range(count)]


def _data(buf: bytes, sections: Dict[int, Tuple[int, int, int]]) -> bytes:
    d = sections.get(DATA)
    return b"" if d is None else buf[d[0] : d[0] + d[1]]


def event_count(buf: bytes) -> int:
    """How many events an input says it holds, read without checking the
    rest (0 if even its directory is broken): how many errors a plugin
    returns for a buffer it cannot read."""
    try:
        events = _directory(buf, {EVENTS: _EVENT.size}).get(EVENTS)
    except FormatError:
        return 0
    return 0 if events is None else events[1]


def _read_headers(data: bytes, table: list, first: int, count: int) -> List[Tuple[str, bytes]]:
    # Checked by `read_input`: every range lies inside the table, every span
    # inside the data.
    out = []
    for no, nl, vo, vl in table[first : first + count]:
        out.append((data[no : no + nl].decode("utf-8", "replace"), data[vo : vo + vl]))
    return out


def read_input(buf: bytes) -> List[Event]:
    """The events of a packed input batch. Raises `FormatError` (naming what
    is wrong) for a buffer that is not valid: the caller fails every event."""
    sections = _directory(buf, _INPUT_KINDS)
    data = _data(buf, sections)
    size = len(data)
    headers = _entries(buf, sections.get(HEADERS), _HEADER)
    for i, (no, nl, vo, vl) in enumerate(headers):
        if no + nl > size or vo + vl > size:
            raise FormatError(f"header {i} has a span outside the data section")
    streams = []
    for i, (so, sl) in enumerate(_entries(buf, sections.get(STREAMS), _SPAN)):
        try:
            if so + sl > size:
                raise UnicodeError
            streams.append(data[so : so + sl].decode("utf-8"))
        except UnicodeError:
            raise FormatError(
                f"stream {i}: its name is outside the data section or not UTF-8"
            ) from None
    nheaders = len(headers)
    nstreams = len(streams)
    new = Event.__new__
    out = []
    append = out.append
    for i, (ko, kl, vo, vl, fh, hc, st, part, ts, off) in enumerate(
        _entries(buf, sections.get(EVENTS), _EVENT)
    ):
        if vo + vl > size:
            raise FormatError(f"event {i}: the value is outside the data section")
        ev = new(Event)
        ev._value = data[vo : vo + vl]
        if kl == NONE:
            ev._key = None
        elif ko + kl > size:
            raise FormatError(f"event {i}: the key is outside the data section")
        else:
            ev._key = data[ko : ko + kl]
        if hc:
            if fh + hc > nheaders:
                raise FormatError(f"event {i}: its header range is outside the headers")
            ev._raw_headers = (_read_headers, data, headers, fh, hc)
        else:
            ev._raw_headers = None
        if st >= nstreams:
            raise FormatError(f"event {i}: its stream index is out of range")
        ev._headers = None
        ev.timestamp_ms = ts
        ev._position = (streams, st, part, off)
        append(ev)
    return out


# ------------------------------------------------------------ writing -------


_PADS = [bytes(i) for i in range(8)]


def _pack(tables: Sequence[Tuple[int, Any, int]], data: Any) -> bytes:
    """Header, directory, the data section, then each (kind, table, stride)
    8-aligned. Tables and data may be bytes or bytearrays."""
    n = 1 + len(tables)
    at = _HEAD.size + n * _DIR.size  # a multiple of 8
    words = [FORMAT, n, DATA, len(data), at, 1]
    parts: List[Any] = [b"", data]
    at += len(data)
    for kind, table, stride in tables:
        pad = -at % 8
        if pad:
            parts.append(_PADS[pad])
            at += pad
        words += (kind, len(table) // stride, at, stride)
        parts.append(table)
        at += len(table)
    parts[0] = _words(len(words)).pack(*words)
    return b"".join(parts)


class Packer:
    """The output buffer being built: the data section and the tables."""

    __slots__ = ("data", "outputs", "headers", "routes", "errors")

    def __init__(self) -> None:
        self.data = bytearray()
        self.outputs = bytearray()
        self.headers = bytearray()
        self.routes = Routes()
        self.errors = bytearray()

    def emit(self, i: int, ts: int, route: Optional[str], ev: Event) -> None:
        data = self.data
        key = ev._key
        if key is None:
            ko, kl = 0, NONE
        else:
            ko = len(data)
            kl = len(key)
            data += key
        value = ev._value
        vo = len(data)
        data += value
        if ev._raw_headers is None and not ev._headers:
            first = count = 0
        else:
            table = self.headers
            first = len(table) // _HEADER.size
            pairs = ev.headers
            count = len(pairs)
            for name, hv in pairs:
                nb = name.encode("utf-8")
                no = len(data)
                data += nb
                table += _HEADER.pack(no, len(nb), len(data), len(hv))
                data += hv
        r = NONE if route is None else self.routes.index(route)
        t = ev.timestamp_ms
        self.outputs += _OUTPUT.pack(
            i, r, ko, kl, vo, len(value), first, count, ts if t is None else t
        )

    def fail(self, i: int, reason: str) -> None:
        msg = reason.encode("utf-8", "replace")
        self.errors += _ERROR.pack(i, len(self.data), len(msg))
        self.data += msg

    def finish(self) -> bytes:
        routes = bytearray()
        for name in self.routes.names:
            nb = name.encode("utf-8")
            routes += _SPAN.pack(len(self.data), len(nb))
            self.data += nb
        return _pack(
            [
                (OUTPUTS, self.outputs, _OUTPUT.size),
                (HEADERS, self.headers, _HEADER.size),
                (ROUTES, routes, _SPAN.size),
                (ERRORS, self.errors, _ERROR.size),
            ],
            self.data,
        )


# -------------------------------------------- the host's directions ---------


def write_input(events: Sequence[Event], streams: Sequence[str], positions: Sequence[tuple]) -> bytes:
    """An input batch as the host writes it: `events` with `positions`
    (stream index, partition, offset) each, and the stream names."""
    data = bytearray()
    table = bytearray()
    headers = bytearray()
    spans = bytearray()

    def push(b: bytes) -> Tuple[int, int]:
        at = len(data)
        data.extend(b)
        return at, len(b)

    for name in streams:
        spans += _SPAN.pack(*push(name.encode("utf-8")))
    for ev, (st, part, off) in zip(events, positions):
        ko, kl = (0, NONE) if ev.key is None else push(ev.key)
        vo, vl = push(ev.value)
        first = len(headers) // _HEADER.size
        for name, hv in ev.headers:
            headers += _HEADER.pack(*push(name.encode("utf-8")), *push(hv))
        ts = ev.timestamp_ms if ev.timestamp_ms is not None else 0
        table += _EVENT.pack(ko, kl, vo, vl, first, len(ev.headers), st, part, ts, off)
    return _pack(
        [
            (EVENTS, bytes(table), _EVENT.size),
            (HEADERS, bytes(headers), _HEADER.size),
            (STREAMS, bytes(spans), _SPAN.size),
        ],
        bytes(data),
    )


def read_output(buf: bytes) -> Tuple[List[Tuple[int, Optional[str], Event]], List[Tuple[int, str]]]:
    """The outputs `(input, route or None, Event)` and errors `(input,
    reason)` of an output batch, checked as the host checks them."""
    sections = _directory(buf, _OUTPUT_KINDS)
    data = _data(buf, sections)
    size = len(data)

    def span(o: int, n: int, what: str) -> bytes:
        if o + n > size:
            raise FormatError(f"{what} is outside the data section")
        return data[o : o + n]

    headers = [
        (span(no, nl, f"header {i}'s name").decode("utf-8"), span(vo, vl, f"header {i}'s value"))
        for i, (no, nl, vo, vl) in enumerate(_entries(buf, sections.get(HEADERS), _HEADER))
    ]
    routes = [
        span(o, n, f"route {i}").decode("utf-8")
        for i, (o, n) in enumerate(_entries(buf, sections.get(ROUTES), _SPAN))
    ]
    outputs = []
    for j, (i, r, ko, kl, vo, vl, fh, hc, ts) in enumerate(
        _entries(buf, sections.get(OUTPUTS), _OUTPUT)
    ):
        if r != NONE and r >= len(routes):
            raise FormatError(f"output {j} names route {r} of {len(routes)}")
        if fh + hc > len(headers):
            raise FormatError(f"output {j}: its header range is outside the headers")
        ev = Event(
            span(vo, vl, f"output {j}'s value"),
            key=None if kl == NONE else span(ko, kl, f"output {j}'s key"),
            headers=headers[fh : fh + hc],
            timestamp_ms=ts,
        )
        outputs.append((i, None if r == NONE else routes[r], ev))
    errors = [
        (i, span(o, n, f"error {j}'s message").decode("utf-8"))
        for j, (i, o, n) in enumerate(_entries(buf, sections.get(ERRORS), _ERROR))
    ]
    return outputs, errors
