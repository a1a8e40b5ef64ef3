"""`Event`, `Output`, `Position` and `Error`: what a plugin function sees."""

import json
from typing import Any, List, NamedTuple, Optional, Tuple, Union

Bytes = Union[bytes, bytearray, memoryview, str]


def _to_bytes(value: Bytes, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be bytes or str, not {type(value).__name__}")


class Error(Exception):
    """Raise it (or any exception) for an event: the event goes to the
    dead-letter output with the message as the reason. `weir.Error` gives the
    message alone; other exceptions are prefixed with their type
    (`KeyError: 'amount'`)."""


class Position(NamedTuple):
    """Where an event was read from. Read-only: outputs inherit the position of
    the input they derive from."""

    stream: str
    partition: int
    offset: int


_NO_POSITION = Position("", -1, -1)


class Event:
    """One event: `key` (bytes or None), `value` (bytes), `headers` (a list of
    `(name, bytes)` pairs), `timestamp_ms` (int, ms since the Unix epoch, or
    None for a new event: it then gets its input's), read-only `position`.

    Values and keys accept `str` too (stored as UTF-8)."""

    __slots__ = ("_key", "_value", "_headers", "_raw_headers", "timestamp_ms", "_position")

    def __init__(
        self,
        value: Bytes = b"",
        key: Optional[Bytes] = None,
        headers: Optional[List[Tuple[str, Bytes]]] = None,
        timestamp_ms: Optional[int] = None,
    ):
        self._value = _to_bytes(value, "value")
        self._key = None if key is None else _to_bytes(key, "key")
        self._headers = (
            [] if headers is None else [(str(n), _to_bytes(v, "header value")) for n, v in headers]
        )
        self._raw_headers = None
        self.timestamp_ms = timestamp_ms
        self._position = _NO_POSITION

    @classmethod
    def from_json(cls, obj: Any, **kwargs: Any) -> "Event":
        """A new event whose value is `obj` as compact JSON."""
        return cls(_dumps(obj), **kwargs)

    # -- value ---------------------------------------------------------------

    @property
    def value(self) -> bytes:
        return self._value

    @value.setter
    def value(self, value: Bytes) -> None:
        self._value = _to_bytes(value, "value")

    def text(self) -> str:
        """The value as UTF-8 text (`UnicodeDecodeError` → dead letter)."""
        return self._value.decode("utf-8")

    def json(self) -> Any:
        """The value parsed as JSON (`ValueError` → dead letter)."""
        return json.loads(self._value)

    def set_json(self, obj: Any) -> "Event":
        """Sets the value to `obj` as compact JSON; returns the event."""
        self._value = _dumps(obj)
        return self

    # -- key -----------------------------------------------------------------

    @property
    def key(self) -> Optional[bytes]:
        return self._key

    @key.setter
    def key(self, key: Optional[Bytes]) -> None:
        self._key = None if key is None else _to_bytes(key, "key")

    # -- headers -------------------------------------------------------------

    @property
    def headers(self) -> List[Tuple[str, bytes]]:
        """The headers, a list of `(name, value)` pairs you may change."""
        raw = self._raw_headers
        if raw is not None:
            # (decoder, *its arguments), set by the batch reader: headers
            # are read only when a plugin asks for them.
            self._headers = raw[0](*raw[1:])
            self._raw_headers = None
        elif self._headers is None:
            # The readers leave None for an event without headers: no list
            # per event unless a plugin asks.
            self._headers = []
        return self._headers

    @headers.setter
    def headers(self, headers: List[Tuple[str, Bytes]]) -> None:
        self._raw_headers = None
        self._headers = [(str(n), _to_bytes(v, "header value")) for n, v in headers]

    def header(self, name: str) -> Optional[bytes]:
        """The first header called `name`, or None."""
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def set_header(self, name: str, value: Bytes) -> "Event":
        """Sets header `name`, replacing every header of that name."""
        value = _to_bytes(value, "header value")
        self.headers = [(n, v) for n, v in self.headers if n != name]
        self._headers.append((name, value))
        return self

    def add_header(self, name: str, value: Bytes) -> "Event":
        self.headers.append((name, _to_bytes(value, "header value")))
        return self

    def remove_header(self, name: str) -> "Event":
        self.headers = [(n, v) for n, v in self.headers if n != name]
        return self

    # -- position ------------------------------------------------------------

    @property
    def position(self) -> Position:
        """Where the input was read from (read-only)."""
        pos = self._position
        if type(pos) is not Position:
            # (stream names, stream index, partition, offset) from the reader.
            streams, index, partition, offset = pos
            stream = streams[index] if index < len(streams) else ""
            pos = self._position = Position(stream, partition, offset)
        return pos

    def copy(self) -> "Event":
        """A copy (same position), e.g. to change one of two outputs."""
        ev = Event.__new__(Event)
        ev._key = self._key
        ev._value = self._value
        ev._headers = list(self.headers)
        ev._raw_headers = None
        ev.timestamp_ms = self.timestamp_ms
        ev._position = self._position
        return ev

    def __repr__(self) -> str:
        return (
            f"Event(value={self._value!r}, key={self._key!r}, headers={self.headers!r}, "
            f"timestamp_ms={self.timestamp_ms!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return (
            self._value == other._value
            and self._key == other._key
            and self.headers == other.headers
            and self.timestamp_ms == other.timestamp_ms
        )

    __hash__ = None  # type: ignore[assignment]


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class Output:
    """An output of `flat_map` or `batch`: `Output(ev)` goes to the default
    output (the next stage, or the pipeline's default sink),
    `Output.to("alerts", ev)` to the named output `alerts`."""

    __slots__ = ("event", "route")

    def __init__(self, event: Event, route: Optional[str] = None):
        if not isinstance(event, Event):
            raise TypeError(f"Output takes an Event, not {type(event).__name__}")
        if route is not None and not isinstance(route, str):
            raise TypeError(f"an output route is a str, not {type(route).__name__}")
        self.event = event
        self.route = route

    @classmethod
    def to(cls, route: str, event: Event) -> "Output":
        return cls(event, route)

    def __repr__(self) -> str:
        return f"Output({self.event!r}, route={self.route!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Output):
            return NotImplemented
        return self.route == other.route and self.event == other.event

    __hash__ = None  # type: ignore[assignment]
