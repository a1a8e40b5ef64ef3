"""`json-filter-py`: the `json-filter` plugin, in Python.

Keeps, drops or routes JSON events by predicates on their fields, and
optionally projects them to a subset of fields. Same params, same semantics
and same error messages as the Rust `plugins/json-filter` (see its README);
the integration tests run both on the same events and compare the outputs.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any, List, Literal, Optional

import weir

OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "exists", "contains")
_INDEX = re.compile(r"^\+?[0-9]+$")
_MISSING = object()


def _parse_path(path: str) -> "list[tuple[str, Optional[int]]]":
    if path == "":
        raise ValueError("a field path cannot be empty")
    segments = []
    for key in path.split("."):
        if key == "":
            raise ValueError(f"field path `{path}` has an empty segment")
        segments.append((key, int(key) if _INDEX.match(key) else None))
    return segments


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _same(a: Any, b: Any) -> bool:
    """Structural equality by representation (inside arrays and objects,
    `1` and `1.0` differ, as in serde_json)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    return a == b


def _eq(a: Any, b: Any) -> bool:
    """Equality where numbers compare by value (`1 == 1.0`)."""
    if _is_number(a) and _is_number(b):
        return a == b
    return _same(a, b)


def _cmp(a: Any, b: Any) -> Optional[int]:
    """-1, 0, 1 for two numbers or two strings; None otherwise."""
    if (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
        return (a > b) - (a < b)
    return None


@dataclass
class Condition:
    path: list
    op: str
    value: Any

    def holds(self, event: Any) -> bool:
        f = event
        for key, index in self.path:
            if isinstance(f, dict):
                f = f.get(key, _MISSING)
            elif isinstance(f, list) and index is not None and index < len(f):
                f = f[index]
            else:
                f = _MISSING
            if f is _MISSING:
                break
        op, value = self.op, self.value
        if f is _MISSING:
            return op == "ne" or (op == "exists" and value is False)
        if op == "eq":
            return _eq(f, value)
        if op == "ne":
            return not _eq(f, value)
        if op in ("gt", "gte", "lt", "lte"):
            c = _cmp(f, value)
            if c is None:
                return False
            return {"gt": c > 0, "gte": c >= 0, "lt": c < 0, "lte": c <= 0}[op]
        if op == "in":
            return any(_eq(f, o) for o in value)
        if op == "exists":
            return value is True
        # contains
        if isinstance(f, str) and isinstance(value, str):
            return value in f
        if isinstance(f, list):
            return any(_eq(item, value) for item in f)
        return False


def _condition(i: int, raw: Any) -> Condition:
    if not isinstance(raw, dict):
        raise ValueError(f"where[{i}]: a condition is a table {{field, op, value}}")
    for k in raw:
        if k not in ("field", "op", "value"):
            raise ValueError(f"where[{i}]: unknown field `{k}`")
    path_text = raw.get("field")
    if not isinstance(path_text, str):
        raise ValueError(f"where[{i}]: missing field `field`")
    op = raw.get("op")
    if op not in OPS:
        raise ValueError(
            f"where[{i}] (field `{path_text}`): unknown variant `{op}`, expected one of {', '.join(OPS)}"
        )

    def problem(text: str) -> ValueError:
        return ValueError(f"where[{i}] (field `{path_text}`): {text}")

    try:
        path = _parse_path(path_text)
    except ValueError as e:
        raise problem(str(e)) from None
    has = "value" in raw
    value = raw.get("value")
    if op == "exists":
        if not has:
            value = True
        elif not isinstance(value, bool):
            raise problem("op `exists` takes `value` true or false (default true)")
    elif not has:
        raise problem(f"op `{op}` needs a `value`")
    elif op in ("gt", "gte", "lt", "lte") and not (_is_number(value) or isinstance(value, str)):
        raise problem(f"op `{op}` needs a number or string `value`")
    elif op == "in" and not isinstance(value, list):
        raise problem("op `in` needs an array `value`")
    return Condition(path, op, value)


def _keep_tree(paths: List[str]) -> list:
    """`keep` paths as a tree of `[key, children]` (no children: keep whole)."""
    nodes: list = []
    for path in paths:
        try:
            keys = [k for k, _ in _parse_path(path)]
        except ValueError as e:
            raise ValueError(f"keep: {e}") from None
        level = nodes
        for depth, key in enumerate(keys):
            node = next((n for n in level if n[0] == key), None)
            last = depth == len(keys) - 1
            if node is None:
                node = [key, []]
                level.append(node)
                if last:
                    break
            elif not node[1]:
                break  # already kept whole
            if last:
                node[1] = []  # a shorter path keeps the whole value
                break
            level = node[1]
    return nodes


@dataclass
class Params:
    where: List[Any] = field(default_factory=list)
    match: Literal["all", "any"] = "all"
    keep: Optional[List[str]] = None
    route: Optional[str] = None

    def __post_init__(self) -> None:
        self.conditions = [_condition(i, c) for i, c in enumerate(self.where)]
        self.keep_tree = None if self.keep is None else _keep_tree(self.keep)
        if self.route == "":
            raise ValueError("route: the output name cannot be empty")

    def matches(self, event: Any) -> bool:
        if self.match == "all":
            return all(c.holds(event) for c in self.conditions)
        return not self.conditions or any(c.holds(event) for c in self.conditions)


def _project(fields: dict, nodes: list) -> dict:
    out = {}
    for key, children in nodes:
        if key not in fields:
            continue
        value = fields[key]
        if not children:
            out[key] = value
        elif isinstance(value, dict):
            out[key] = _project(value, children)
    return out


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if _is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


@weir.flat_map
def json_filter(ev: weir.Event, params: Params):
    try:
        value = json.loads(ev.value)
    except ValueError as e:
        raise weir.Error(f"event value is not JSON: {e}") from None
    if not params.matches(value):
        # Routing mode: non-matching events continue unchanged; filter: dropped.
        return ev if params.route is not None else None
    if params.keep_tree is not None:
        if not isinstance(value, dict):
            raise weir.Error(f"`keep` needs a JSON object event, got {_kind(value)}")
        ev.set_json(_project(value, params.keep_tree))
    if params.route is not None:
        return weir.Output.to(params.route, ev)
    return ev
