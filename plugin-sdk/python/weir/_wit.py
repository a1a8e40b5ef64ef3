"""The WIT types of `weir:plugin/types`, from the generated bindings.

Inside a component, `wit_world` is the package componentize-py generates from
the contract at build time: `wit` (0.2.0, the packed batch: `weir plugin
build`'s default for Python) or a folder of `wit/released/` (0.1.x, the
record batch). `CONTRACT` says which: "0.2" when the bindings define
`plugin-info` (0.2.0's `init` result), "0.1" when they define the batch
records, None outside a component. Outside one (the SDK's and a plugin's
native unit tests) the 0.1.x records are defined here as plain dataclasses,
so the record codec runs unchanged.
"""

from dataclasses import dataclass
from typing import List, Optional

CONTRACT: Optional[str] = None
PluginInfo = None

try:  # In a component built against 0.2.0.
    from wit_world.imports.types import PluginInfo  # type: ignore[import-not-found,no-redef]

    CONTRACT = "0.2"
except ImportError:
    pass

try:  # In a component built against 0.1.x: the generated bindings.
    from wit_world.imports.types import (  # type: ignore[import-not-found]
        Batch,
        Event,
        EventError,
        Header,
        OutputBatch,
        OutputEvent,
        Position,
        Span,
    )

    CONTRACT = "0.1"
except ImportError:  # 0.2.0, or natively: stand-ins with the same fields.

    @dataclass
    class Span:  # type: ignore[no-redef]
        offset: int
        len: int

    @dataclass
    class Header:  # type: ignore[no-redef]
        name: Span
        value: Span

    @dataclass
    class Position:  # type: ignore[no-redef]
        stream: int
        partition: int
        offset: int

    @dataclass
    class Event:  # type: ignore[no-redef]
        key: Optional[Span]
        value: Span
        timestamp_ms: int
        headers: Span
        position: Position

    @dataclass
    class Batch:  # type: ignore[no-redef]
        data: bytes
        events: List[Event]
        headers: List[Header]
        streams: List[str]

    @dataclass
    class OutputEvent:  # type: ignore[no-redef]
        input: int
        route: Optional[int]
        key: Optional[Span]
        value: Span
        timestamp_ms: int
        headers: Span

    @dataclass
    class EventError:  # type: ignore[no-redef]
        input: int
        message: str

    @dataclass
    class OutputBatch:  # type: ignore[no-redef]
        data: bytes
        events: List[OutputEvent]
        headers: List[Header]
        routes: List[str]
        errors: List[EventError]


__all__ = [
    "CONTRACT",
    "PluginInfo",
    "Batch",
    "Event",
    "EventError",
    "Header",
    "OutputBatch",
    "OutputEvent",
    "Position",
    "Span",
]
