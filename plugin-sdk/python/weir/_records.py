"""The record batch of contract 0.1.x (`wit/README.md`, "The 0.1.x batch").

A plugin built against `wit/released/0.1.x` receives a `batch` record (one
data buffer, event records with spans into it) and returns an
`output-batch` record. `read_input` turns the records into `Event`s (an
event whose spans are broken becomes an `Error` in its place: it fails
alone); `Encoder` builds the output records.
"""

from typing import Any, List, Optional, Tuple, Union

from ._event import Error, Event
from ._routes import Routes
from ._wit import EventError, Header, OutputBatch, OutputEvent, Span

_NO_HEADERS = Span(0, 0)


def _read_headers(data: bytes, table: list, offset: int, count: int) -> List[Tuple[str, bytes]]:
    out = []
    end = offset + count
    if end > len(table):
        raise Error(
            f"malformed input batch: header range {offset}+{count} "
            f"is outside its table ({len(table)} entries)"
        )
    for h in table[offset:end]:
        n, v = h.name, h.value
        name = data[n.offset : n.offset + n.len].decode("utf-8", "replace")
        out.append((name, data[v.offset : v.offset + v.len]))
    return out


def _event(data: bytes, raw: Any, table: list, streams: list) -> Event:
    ev = Event.__new__(Event)
    v = raw.value
    o = v.offset
    end = o + v.len
    if end > len(data):
        raise Error(
            f"malformed input batch: data span {o}+{v.len} is outside its table ({len(data)} entries)"
        )
    ev._value = data[o:end]
    k = raw.key
    ev._key = None if k is None else data[k.offset : k.offset + k.len]
    h = raw.headers
    ev._raw_headers = (_read_headers, data, table, h.offset, h.len) if h.len else None
    ev._headers = None
    ev.timestamp_ms = raw.timestamp_ms
    p = raw.position
    ev._position = (streams, p.stream, p.partition, p.offset)
    return ev


def read_input(batch: Any) -> List[Union[Event, Error]]:
    """The events of `batch`, an `Error` in place of each malformed one."""
    data = batch.data
    table = batch.headers
    streams = batch.streams
    out: List[Union[Event, Error]] = []
    for raw in batch.events:
        try:
            out.append(_event(data, raw, table, streams))
        except Error as e:
            out.append(e)
    return out


class Encoder:
    """The output batch being built: one byte buffer, the output records."""

    __slots__ = ("buf", "events", "headers", "routes", "errors")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.events: List[Any] = []
        self.headers: List[Any] = []
        self.routes = Routes()
        self.errors: List[Any] = []

    def emit(self, i: int, ts: int, route: Optional[str], ev: Event) -> None:
        buf = self.buf
        key = ev._key
        if key is None:
            kspan = None
        else:
            kspan = Span(len(buf), len(key))
            buf += key
        value = ev._value
        vspan = Span(len(buf), len(value))
        buf += value
        if ev._raw_headers is None and not ev._headers:
            hspan = _NO_HEADERS
        else:
            table = self.headers
            first = len(table)
            pairs = ev.headers
            for name, hv in pairs:
                nb = name.encode("utf-8")
                nspan = Span(len(buf), len(nb))
                buf += nb
                table.append(Header(nspan, Span(len(buf), len(hv))))
                buf += hv
            hspan = Span(first, len(pairs))
        r = None if route is None else self.routes.index(route)
        t = ev.timestamp_ms
        self.events.append(OutputEvent(i, r, kspan, vspan, ts if t is None else t, hspan))

    def fail(self, i: int, reason: str) -> None:
        self.errors.append(EventError(i, reason))

    def finish(self) -> Any:
        return OutputBatch(bytes(self.buf), self.events, self.headers, self.routes.names, self.errors)
