"""Stage params: the pipeline's `[stages.params]` (a JSON object) turned into
the type the plugin function asks for.

* no annotation, `dict` or `Any`: the dict itself;
* a dataclass: its fields from the object; an unknown field, a missing field
  without a default, or a value of the wrong type refuses the plugin with a
  message naming the field (`invalid params: `threshold`: expected float, got
  str "high"`). Nested dataclasses, `list[T]`, `dict[str, T]`, `Optional[T]`
  and `Literal[...]` are checked the same way.
"""

import dataclasses
import json
import typing
from typing import Any

from ._event import Error


class ParamsError(Error):
    """Params that do not fit the plugin's params type."""


def parse_json(text: str) -> Any:
    text = (text or "").strip()
    if text in ("", "null"):
        return {}
    try:
        return json.loads(text)
    except ValueError as e:
        raise ParamsError(f"invalid params: not JSON: {e}") from None


def convert(value: Any, annotation: Any) -> Any:
    """`value` (parsed JSON) as `annotation`; raises `ParamsError`."""
    try:
        return _convert(value, annotation, "")
    except ParamsError as e:
        raise ParamsError(f"invalid params: {e}") from None


def _describe(value: Any) -> str:
    kind = {
        type(None): "null",
        bool: "bool",
        int: "int",
        float: "float",
        str: "str",
        list: "list",
        dict: "object",
    }.get(type(value), type(value).__name__)
    text = json.dumps(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{kind} {text}"


def _at(path: str, message: str) -> ParamsError:
    return ParamsError(f"`{path}`: {message}" if path else message)


def _name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _convert(value: Any, ann: Any, path: str) -> Any:
    if ann is Any or ann is None or ann is typing.Any:
        return value
    if dataclasses.is_dataclass(ann) and isinstance(ann, type):
        return _dataclass(value, ann, path)
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, path)
            except ParamsError as e:
                errors.append(str(e))
        raise _at(path, f"expected {_name(ann)}, got {_describe(value)}")
    if origin is typing.Literal:
        if value in args:
            return value
        options = ", ".join(json.dumps(a) for a in args)
        raise _at(path, f"expected one of {options}, got {_describe(value)}")
    if origin in (list, typing.List) or ann is list:
        if not isinstance(value, list):
            raise _at(path, f"expected a list, got {_describe(value)}")
        item = args[0] if args else Any
        return [_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, typing.Dict) or ann is dict:
        if not isinstance(value, dict):
            raise _at(path, f"expected an object, got {_describe(value)}")
        item = args[1] if len(args) == 2 else Any
        return {k: _convert(v, item, f"{path}.{k}" if path else k) for k, v in value.items()}
    if ann is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _at(path, f"expected float, got {_describe(value)}")
    if ann is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _at(path, f"expected int, got {_describe(value)}")
    if ann is bool or ann is str:
        if type(value) is ann:
            return value
        raise _at(path, f"expected {ann.__name__}, got {_describe(value)}")
    return value


def _dataclass(value: Any, cls: type, path: str) -> Any:
    if not isinstance(value, dict):
        raise _at(path, f"expected an object, got {_describe(value)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in value:
        if key not in fields:
            known = ", ".join(f"`{k}`" for k in fields) or "none"
            where = f" in `{path}`" if path else ""
            raise ParamsError(f"unknown field `{key}`{where} (known fields: {known})")
    kwargs = {}
    for name, field in fields.items():
        sub = f"{path}.{name}" if path else name
        if name in value:
            kwargs[name] = _convert(value[name], hints.get(name, Any), sub)
        elif (
            field.default is dataclasses.MISSING
            and field.default_factory is dataclasses.MISSING  # type: ignore[misc]
        ):
            raise ParamsError(f"missing field `{sub}`")
    try:
        return cls(**kwargs)
    except ParamsError:
        raise
    except Exception as e:  # A __post_init__ check.
        raise _at(path, f"{e}") from None
