"""weir-sdk: write weir stream-transform plugins in Python, as one function.

```python
import weir

@weir.map
def shout(ev: weir.Event) -> weir.Event:
    doc = ev.json()
    doc["name"] = doc["name"].upper()   # no "name": KeyError -> dead letter
    return ev.set_json(doc)
```

`weir plugin build DIR` turns the folder into a WebAssembly component that
implements the `weir:plugin/transform` world; the SDK hides the bindings and
the batch layout. Entry points (exactly one per plugin): `map`, `filter`,
`flat_map` (routing with `weir.Output.to("alerts", ev)`) and `batch`; each may
take a second argument, the stage params (a dict, or a dataclass to check
them). An exception raised for an event sends that event to the dead-letter
output with the message. See README.md.
"""

from typing import Callable, TypeVar

from . import _runtime
from ._event import Error, Event, Output, Position
from ._host import InferError, Tensor, infer, log, now_ms
from ._params import ParamsError

F = TypeVar("F", bound=Callable)

__version__ = "0.1.0"


def map(func: F) -> F:  # noqa: A001 (weir.map, like the Rust SDK's)
    """One event in, one out: `fn(ev)` or `fn(ev, params)` returns the event
    (or new `bytes`/`str` value, or a dict/list as its JSON value). Raise to
    send the event to the dead letters."""
    return _runtime.register("map", func)


def filter(func: F) -> F:  # noqa: A001
    """Keep the event when `fn(ev)` (or `fn(ev, params)`) is truthy."""
    return _runtime.register("filter", func)


def flat_map(func: F) -> F:
    """Zero or more outputs per event: return a list of Events (default
    output) and `weir.Output.to("route", ev)`s, one Event, or None."""
    return _runtime.register("flat_map", func)


def batch(func: F) -> F:
    """The whole batch at once: `fn(events)` (or `fn(events, params)`)
    returns one result per event, in order; each result is what a flat_map
    returns, or an Exception instance (that event goes to the dead letters)."""
    return _runtime.register("batch", func)


def init(func: F) -> F:
    """Optional: `fn()` or `fn(params)`, run once before any batch (after the
    entry point's params were checked). Raising refuses the plugin."""
    return _runtime.register_init(func)


__all__ = [
    "Error",
    "Event",
    "InferError",
    "Output",
    "ParamsError",
    "Position",
    "Tensor",
    "batch",
    "filter",
    "flat_map",
    "infer",
    "init",
    "log",
    "map",
    "now_ms",
]
