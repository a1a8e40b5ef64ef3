"""The WIT types of `weir:plugin/types`, from the generated bindings.

Inside a component, `wit_world` is the package componentize-py generates from
the contract at build time (`wit/released/0.1.1`, `weir plugin build`'s
default). Outside one (the SDK's and a plugin's native
unit tests) the same records are defined here as plain dataclasses, so the
batch code runs unchanged.
"""

from dataclasses import dataclass
from typing import List, Optional

try:  # In a component: the generated bindings.
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

    IN_COMPONENT = True
except ImportError:  # Natively: stand-ins with the same fields.
    IN_COMPONENT = False

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
    "IN_COMPONENT",
    "Batch",
    "Event",
    "EventError",
    "Header",
    "OutputBatch",
    "OutputEvent",
    "Position",
    "Span",
]
