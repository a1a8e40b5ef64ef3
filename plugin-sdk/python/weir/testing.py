"""Running a plugin natively, in unit tests, through the same batch code the
component runs.

```python
import weir.testing
import app   # the plugin module (registers its function)

out = weir.testing.run([b'{"name": "ann"}', b"not json"], params={"tag": "t"})
assert out.values() == [b'{"name":"ANN"}']
assert out.errors[0][0] == 1          # (input index, reason)
```
"""

import json
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from . import _packed, _runtime
from ._event import Event, Position
from ._host import set_infer_handler
from ._wit import Batch, Header, Position as _WitPosition, Span
from ._wit import Event as _WitEvent

__all__ = ["Result", "batch_of", "packed_batch_of", "run", "set_infer_handler"]

CONTRACTS = ("0.2", "0.1")


class Result:
    """What a batch produced: `outputs` as `(input index, route or None,
    Event)`, `errors` as `(input index, reason)`."""

    def __init__(self, outputs: List[Tuple[int, Optional[str], Event]], errors: List[Tuple[int, str]]):
        self.outputs = outputs
        self.errors = errors

    def values(self, route: Optional[str] = None) -> List[bytes]:
        """The values sent to `route` (None: the default output)."""
        return [ev.value for _, r, ev in self.outputs if r == route]

    def routes(self) -> List[Optional[str]]:
        return [r for _, r, _ in self.outputs]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Result):
            return NotImplemented
        return self.outputs == other.outputs and self.errors == other.errors

    def __repr__(self) -> str:
        return f"Result(outputs={self.outputs!r}, errors={self.errors!r})"

    __hash__ = None  # type: ignore[assignment]


def _events(events: Sequence[Union[bytes, str, Event]]) -> List[Event]:
    out = []
    for i, e in enumerate(events):
        ev = e.copy() if isinstance(e, Event) else Event(e)
        if ev.timestamp_ms is None:
            ev.timestamp_ms = 1000 + i
        out.append(ev)
    return out


def packed_batch_of(events: Sequence[Union[bytes, str, Event]], stream: str = "test") -> bytes:
    """A packed input batch (contract 0.2.0) holding `events` (values, or
    Events with key, headers and timestamp), as the host writes it; offsets
    are the indexes."""
    evs = _events(events)
    return _packed.write_input(evs, [stream], [(0, 0, i) for i in range(len(evs))])


def batch_of(events: Sequence[Union[bytes, str, Event]], stream: str = "test") -> Any:
    """A record batch (contract 0.1.x) holding `events`, as the host sends
    it; offsets are the indexes."""
    data = bytearray()
    headers: List[Any] = []
    raws = []

    def span(b: bytes) -> Any:
        s = Span(len(data), len(b))
        data.extend(b)
        return s

    for i, ev in enumerate(_events(events)):
        key = None if ev.key is None else span(ev.key)
        value = span(ev.value)
        first = len(headers)
        for name, v in ev.headers:
            headers.append(Header(span(name.encode()), span(v)))
        raws.append(
            _WitEvent(key, value, ev.timestamp_ms, Span(first, len(ev.headers)), _WitPosition(0, 0, i))
        )
    return Batch(bytes(data), raws, headers, [stream])


def decode(out: Any) -> Result:
    """The outputs and errors of an output batch: packed (bytes, 0.2.0) or
    records (0.1.x)."""
    if isinstance(out, (bytes, bytearray)):
        return Result(*_packed.read_output(bytes(out)))
    data = out.data
    outputs = []
    for o in out.events:
        ev = Event(data[o.value.offset : o.value.offset + o.value.len])
        if o.key is not None:
            ev.key = data[o.key.offset : o.key.offset + o.key.len]
        pairs = []
        for h in out.headers[o.headers.offset : o.headers.offset + o.headers.len]:
            pairs.append(
                (
                    data[h.name.offset : h.name.offset + h.name.len].decode(),
                    data[h.value.offset : h.value.offset + h.value.len],
                )
            )
        ev.headers = pairs
        ev.timestamp_ms = o.timestamp_ms
        outputs.append((o.input, None if o.route is None else out.routes[o.route], ev))
    return Result(outputs, [(e.input, e.message) for e in out.errors])


def run(
    events: Sequence[Union[bytes, str, Event]],
    params: Union[None, str, Dict[str, Any]] = None,
    contract: str = "0.2",
) -> Result:
    """Starts the registered plugin with `params` (as `init` does; a
    `ParamsError` or the init's exception propagates) and runs one batch
    through the codec of `contract` ("0.2": the packed batch, what `weir
    plugin build` targets; "0.1": the record batch of 0.1.x)."""
    if contract not in CONTRACTS:
        raise ValueError(f"contract is one of {CONTRACTS}, not {contract!r}")
    text = params if isinstance(params, str) else json.dumps(params or {})
    _runtime.start(text)
    if contract == "0.2":
        return decode(_runtime.process_packed(packed_batch_of(events)))
    return decode(_runtime.process_records(batch_of(events)))


def position(stream: str = "test", partition: int = 0, offset: int = 0) -> Position:
    return Position(stream, partition, offset)
