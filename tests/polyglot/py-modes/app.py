"""Test plugin `py-modes`: one Python plugin, several behaviours, chosen by
the `mode` param, so the integration tests need few (slow to build) Python
components.

| mode | on every event | on a triggered event (`"trigger": true`) |
|---|---|---|
| `route` | adds `"seen_by": "py"`, header `py-version`; `"drop": true` is filtered out; `amount > threshold` is also sent to `alerts`; not JSON: dead letter | - |
| `tag` | header `py-version` (`version.py`) and `tag` (the `tag` param), value unchanged | - |
| `json-map` | uppercases the `user` field (the benchmark's map) | - |
| `pass` | returns the event unchanged (the benchmark's floor) | - |
| `drop` | returns no output (the benchmark: the batch into Python alone) | - |
| `loop` | passes through | loops forever |
| `memory` | passes through | allocates 1 MiB blocks forever |
| `raise` | passes through | raises `ValueError("boom on id N")` |
| `huge-output` | passes through | returns a 32 MiB value |
"""

from dataclasses import dataclass
from typing import Literal

import weir
from version import VERSION

Mode = Literal["route", "tag", "json-map", "pass", "drop", "loop", "memory", "raise", "huge-output"]


@dataclass
class Params:
    mode: Mode
    threshold: float = 100.0
    tag: str = "t"


def _triggered(ev: weir.Event) -> "dict | None":
    doc = ev.json()
    return doc if isinstance(doc, dict) and doc.get("trigger") is True else None


@weir.flat_map
def modes(ev: weir.Event, params: Params):
    mode = params.mode
    if mode == "pass":
        return ev
    if mode == "drop":
        return None
    if mode == "json-map":
        doc = ev.json()
        doc["user"] = doc["user"].upper()
        return ev.set_json(doc)
    if mode == "tag":
        ev.set_header("py-version", VERSION)
        ev.set_header("tag", params.tag)
        return ev
    if mode == "route":
        doc = ev.json()
        if doc.get("drop") is True:
            return None
        doc["seen_by"] = "py"
        ev.set_json(doc)
        ev.set_header("py-version", VERSION)
        out = [ev]
        if doc.get("amount", 0) > params.threshold:
            out.append(weir.Output.to("alerts", ev))
        return out
    doc = _triggered(ev)
    if doc is None:
        return ev
    if mode == "loop":
        n = 0
        while True:
            n += 1
    if mode == "memory":
        hoard = []
        while True:
            hoard.append(bytearray(1 << 20))
    if mode == "raise":
        raise ValueError(f"boom on id {doc.get('id')}")
    if mode == "huge-output":
        ev.value = b"x" * (32 << 20)
        return ev
    raise weir.Error(f"unknown mode {mode}")
