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

from . import _runtime
from ._event import Event, Position
from ._host import set_infer_handler
from ._wit import Batch, Header, Position as _WitPosition, Span
from ._wit import Event as _WitEvent

__all__ = ["Result", "batch_of", "run", "set_infer_handler"]


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


def batch_of(events: Sequence[Union[bytes, str, Event]], stream: str = "test") -> Any:
    """A WIT batch holding `events` (values, or Events with key, headers and
    timestamp), as the host sends it; offsets are the indexes."""
    data = bytearray()
    headers: List[Any] = []
    raws = []

    def span(b: bytes) -> Any:
        s = Span(len(data), len(b))
        data.extend(b)
        return s

    for i, e in enumerate(events):
        ev = e if isinstance(e, Event) else Event(e)
        key = None if ev.key is None else span(ev.key)
        value = span(ev.value)
        first = len(headers)
        for name, v in ev.headers:
            headers.append(Header(span(name.encode()), span(v)))
        raws.append(
            _WitEvent(
                key,
                value,
                ev.timestamp_ms if ev.timestamp_ms is not None else 1000 + i,
                Span(first, len(ev.headers)),
                _WitPosition(0, 0, i),
            )
        )
    return Batch(bytes(data), raws, headers, [stream])


def decode(out: Any) -> Result:
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
) -> Result:
    """Starts the registered plugin with `params` (as `init` does; a
    `ParamsError` or the init's exception propagates) and runs one batch."""
    text = params if isinstance(params, str) else json.dumps(params or {})
    _runtime.start(text)
    return decode(_runtime.process(batch_of(events)))


def position(stream: str = "test", partition: int = 0, offset: int = 0) -> Position:
    return Position(stream, partition, offset)
