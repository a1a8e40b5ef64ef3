"""The plugin's entry point and the batch loop.

The decorators register the one function of a plugin here; the exported
`Transformer` (`_guest.py`) calls `start` once with the stage params, then
`process` per batch. `process` reads the batch's spans into `Event`s, calls
the function per event (or once per batch), and writes the outputs into one
output buffer: the plugin author never sees the WIT records.
"""

import inspect
from typing import Any, Callable, Dict, List, Optional

from . import _params
from ._event import Error, Event, Output, _to_bytes
from ._host import InferError
from ._wit import EventError, Header, OutputBatch, OutputEvent, Span

KINDS = ("map", "filter", "flat_map", "batch")


class Entry:
    __slots__ = ("kind", "func", "takes_params", "params_type")

    def __init__(self, kind: str, func: Callable, takes_params: bool, params_type: Any):
        self.kind = kind
        self.func = func
        self.takes_params = takes_params
        self.params_type = params_type


_entry: Optional[Entry] = None
_init: Optional[Entry] = None
_params_value: Any = None
_started = False


def _signature(func: Callable, kind: str, max_args: int) -> "tuple[bool, Any]":
    if not callable(func):
        raise TypeError(f"@weir.{kind} decorates a function, not {type(func).__name__}")
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return False, Any
    positional = [
        p
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    low = 0 if kind == "init" else 1
    if not low <= len(positional) <= max_args:
        what = "(params) or ()" if kind == "init" else "(event) or (event, params)"
        if kind == "batch":
            what = "(events) or (events, params)"
        raise TypeError(
            f"@weir.{kind} function `{func.__name__}` must take {what}, "
            f"it takes {len(positional)} arguments"
        )
    takes = len(positional) == max_args
    if not takes:
        return False, Any
    param = positional[-1]
    ann = param.annotation
    if ann is param.empty:
        return True, Any
    if isinstance(ann, str):  # `from __future__ import annotations`
        import typing

        try:
            ann = typing.get_type_hints(func).get(param.name, Any)
        except Exception:
            ann = Any
    return True, ann


def register(kind: str, func: Callable) -> Callable:
    global _entry
    takes, ann = _signature(func, kind, 2)
    if _entry is not None and _entry.func is not func:
        raise RuntimeError(
            f"a plugin has exactly one entry point: `{_entry.func.__name__}` is already "
            f"@weir.{_entry.kind}, so `{func.__name__}` cannot be @weir.{kind}"
        )
    _entry = Entry(kind, func, takes, ann)
    return func


def register_init(func: Callable) -> Callable:
    global _init
    takes, ann = _signature(func, "init", 1)
    _init = Entry("init", func, takes, ann)
    return func


def reset() -> None:
    """Forget the registered functions (SDK tests only)."""
    global _entry, _init, _params_value, _started
    _entry = _init = None
    _params_value = None
    _started = False


def message(e: BaseException) -> str:
    """The dead-letter reason for an exception raised for an event."""
    if isinstance(e, (Error, InferError)):
        return str(e) or type(e).__name__
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def start(params_json: str) -> None:
    """`init`: parse the params for the entry point (and `@weir.init`), run
    `@weir.init`. Raises `ParamsError` or the init's exception (refused)."""
    global _params_value, _started
    if _entry is None:
        raise RuntimeError(
            "this plugin has no entry point: decorate one function with "
            "@weir.map, @weir.filter, @weir.flat_map or @weir.batch"
        )
    raw = _params.parse_json(params_json)
    _params_value = _params.convert(raw, _entry.params_type) if _entry.takes_params else raw
    if _init is not None:
        if _init.takes_params:
            _init.func(_params.convert(_params.parse_json(params_json), _init.params_type))
        else:
            _init.func()
    _started = True


# ------------------------------------------------------------ encoding ------

_NO_HEADERS = Span(0, 0)


class Encoder:
    """The output batch being built: one byte buffer, the output records."""

    __slots__ = ("buf", "events", "headers", "routes", "route_index", "errors")

    def __init__(self, size_hint: int):
        self.buf = bytearray()
        self.events: List[Any] = []
        self.headers: List[Any] = []
        self.routes: List[str] = []
        self.route_index: Dict[str, int] = {}
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
        if route is None:
            r = None
        else:
            r = self.route_index.get(route)
            if r is None:
                r = self.route_index[route] = len(self.routes)
                self.routes.append(route)
        t = ev.timestamp_ms
        self.events.append(OutputEvent(i, r, kspan, vspan, ts if t is None else t, hspan))

    def fail(self, i: int, reason: str) -> None:
        self.errors.append(EventError(i, reason))

    def finish(self) -> Any:
        return OutputBatch(bytes(self.buf), self.events, self.headers, self.routes, self.errors)


def _outputs(enc: Encoder, i: int, ts: int, result: Any, kind: str) -> None:
    """Emits a flat_map/batch result: Event, Output, None, or an iterable of
    Events and Outputs."""
    if result is None:
        return
    if isinstance(result, Event):
        enc.emit(i, ts, None, result)
        return
    if isinstance(result, Output):
        enc.emit(i, ts, result.route, result.event)
        return
    if isinstance(result, (str, bytes, dict)) or not hasattr(result, "__iter__"):
        raise TypeError(
            f"@weir.{kind} must return Events or weir.Output(...)s (a list), "
            f"not {type(result).__name__}"
        )
    # Check everything before emitting anything: an event fails whole.
    items = list(result)
    for item in items:
        if not isinstance(item, (Event, Output)):
            raise TypeError(
                f"@weir.{kind} must return Events or weir.Output(...)s, "
                f"not a list holding {type(item).__name__}"
            )
    for item in items:
        if isinstance(item, Event):
            enc.emit(i, ts, None, item)
        else:
            enc.emit(i, ts, item.route, item.event)


def _mapped(result: Any, ev: Event) -> Event:
    if isinstance(result, Event):
        return result
    if result is None:
        raise TypeError(
            "@weir.map returned None: return the event (or raise, to send it to the dead letters)"
        )
    if isinstance(result, (dict, list)):
        return ev.set_json(result)
    ev.value = _to_bytes(result, "@weir.map's result")
    return ev


# ------------------------------------------------------------ decoding ------


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
    if h.len:
        ev._raw_headers = (data, table, h)
    else:
        ev._raw_headers = None
    ev._headers = []
    ev.timestamp_ms = raw.timestamp_ms
    ev._position = (streams, raw.position)
    return ev


def process(batch: Any) -> Any:
    entry = _entry
    enc = Encoder(len(batch.data))
    if entry is None or not _started:
        for i in range(len(batch.events)):
            enc.fail(i, "the plugin was not initialized (init failed or was not called)")
        return enc.finish()
    data = batch.data
    table = batch.headers
    streams = batch.streams
    func = entry.func
    params = _params_value
    with_params = entry.takes_params
    kind = entry.kind
    if kind == "batch":
        return _process_batch(batch, enc, func, params, with_params)
    emit = enc.emit
    fail = enc.fail
    for i, raw in enumerate(batch.events):
        ts = raw.timestamp_ms
        try:
            ev = _event(data, raw, table, streams)
            result = func(ev, params) if with_params else func(ev)
            if kind == "map":
                emit(i, ts, None, _mapped(result, ev))
            elif kind == "filter":
                if result:
                    emit(i, ts, None, ev)
            else:
                _outputs(enc, i, ts, result, kind)
        except Exception as e:
            fail(i, message(e))
    return enc.finish()


def _process_batch(batch: Any, enc: Encoder, func: Callable, params: Any, with_params: bool) -> Any:
    data = batch.data
    table = batch.headers
    streams = batch.streams
    events = []
    inputs = []
    for i, raw in enumerate(batch.events):
        try:
            events.append(_event(data, raw, table, streams))
            inputs.append((i, raw.timestamp_ms))
        except Exception as e:
            enc.fail(i, message(e))
    try:
        results = func(events, params) if with_params else func(events)
        results = list(results)
    except Exception as e:
        reason = message(e)
        for i, _ in inputs:
            enc.fail(i, reason)
        return enc.finish()
    if len(results) != len(inputs):
        reason = (
            f"the batch function returned {len(results)} results for {len(inputs)} events "
            "(it must return one per event, in order)"
        )
        for i, _ in inputs:
            enc.fail(i, reason)
        return enc.finish()
    for (i, ts), result in zip(inputs, results):
        if isinstance(result, BaseException):
            enc.fail(i, message(result))
            continue
        try:
            _outputs(enc, i, ts, result, "batch")
        except Exception as e:
            enc.fail(i, message(e))
    return enc.finish()
