"""The plugin's entry point and the batch loop.

The decorators register the one function of a plugin here; the exported
`Transformer` (`_guest.py`) calls `start` once with the stage params, then
`process_packed` (contract 0.2.0) or `process_records` (0.1.x) per batch.
Both read the batch into `Event`s with their contract's codec (`_packed`,
`_records`), run the same loop (`_run`: the function per event, or once per
batch) and write the outputs back with that codec: the plugin author never
sees the layout.
"""

import inspect
from typing import Any, Callable, List, Optional

from . import _packed, _params, _records
from ._event import Error, Event, Output, _to_bytes
from ._host import InferError

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


def _outputs(enc: Any, i: int, ts: int, result: Any, kind: str) -> None:
    """Emits a flat_map/batch result: Event, Output, None, or an iterable of
    Events and Outputs."""
    t = type(result)
    if t is Event:
        enc.emit(i, ts, None, result)
        return
    if result is None:
        return
    if t is Output:
        enc.emit(i, ts, result.route, result.event)
        return
    if t is list:
        items = result
    elif isinstance(result, Event):
        enc.emit(i, ts, None, result)
        return
    elif isinstance(result, Output):
        enc.emit(i, ts, result.route, result.event)
        return
    elif isinstance(result, (str, bytes, dict)) or not hasattr(result, "__iter__"):
        raise TypeError(
            f"@weir.{kind} must return Events or weir.Output(...)s (a list), "
            f"not {type(result).__name__}"
        )
    else:
        items = list(result)
    # Check everything before emitting anything: an event fails whole.
    for item in items:
        if not isinstance(item, (Event, Output)):
            raise TypeError(
                f"@weir.{kind} must return Events or weir.Output(...)s, "
                f"not a list holding {type(item).__name__}"
            )
    emit = enc.emit
    for item in items:
        if isinstance(item, Event):
            emit(i, ts, None, item)
        else:
            emit(i, ts, item.route, item.event)


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


# ------------------------------------------------------------ the loop ------


def process_records(batch: Any) -> Any:
    """`process` of contract 0.1.x: a batch record in, an output record out."""
    enc = _records.Encoder()
    if _entry is None or not _started:
        _fail_all(enc, len(batch.events), NOT_STARTED)
    else:
        _run(_records.read_input(batch), enc)
    return enc.finish()


def process_packed(input: bytes) -> bytes:  # noqa: A002 (the WIT parameter's name)
    """`process` of contract 0.2.0: a packed batch in, a packed batch out. An
    input that is not valid fails every event it claims, with the reason."""
    enc = _packed.Packer()
    if _entry is None or not _started:
        _fail_all(enc, _packed.event_count(input), NOT_STARTED)
        return enc.finish()
    try:
        events = _packed.read_input(input)
    except _packed.FormatError as e:
        _fail_all(enc, _packed.event_count(input), f"malformed input batch: {e}")
        return enc.finish()
    _run(events, enc)
    return enc.finish()


NOT_STARTED = "the plugin was not initialized (init failed or was not called)"


def _fail_all(enc: Any, n: int, reason: str) -> None:
    """Inputs 0..n all fail with `reason` (nothing else is emitted)."""
    for i in range(n):
        enc.fail(i, reason)


def _run(events: List[Any], enc: Any) -> None:
    """Calls the plugin's function over `events` (an `Error` in place of an
    event the reader could not read) and writes what it returns into `enc`
    (`emit(input, ts, route, event)`, `fail(input, reason)`): the same loop
    for every contract's codec."""
    entry = _entry
    if entry is None:
        return
    func = entry.func
    params = _params_value
    with_params = entry.takes_params
    kind = entry.kind
    if kind == "batch":
        _run_batch(events, enc, func, params, with_params)
        return
    emit = enc.emit
    fail = enc.fail
    for i, ev in enumerate(events):
        if type(ev) is not Event:
            fail(i, message(ev))
            continue
        ts = ev.timestamp_ms
        try:
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


def _run_batch(events: List[Any], enc: Any, func: Callable, params: Any, with_params: bool) -> None:
    good = []
    inputs = []
    for i, ev in enumerate(events):
        if type(ev) is Event:
            good.append(ev)
            inputs.append((i, ev.timestamp_ms))
        else:
            enc.fail(i, message(ev))
    try:
        results = func(good, params) if with_params else func(good)
        results = list(results)
    except Exception as e:
        reason = message(e)
        for i, _ in inputs:
            enc.fail(i, reason)
        return
    if len(results) != len(inputs):
        reason = (
            f"the batch function returned {len(results)} results for {len(inputs)} events "
            "(it must return one per event, in order)"
        )
        for i, _ in inputs:
            enc.fail(i, reason)
        return
    for (i, ts), result in zip(inputs, results):
        if isinstance(result, BaseException):
            enc.fail(i, message(result))
            continue
        try:
            _outputs(enc, i, ts, result, "batch")
        except Exception as e:
            enc.fail(i, message(e))
