"""Host services: the log, the clock and the models.

In a component these call the WIT imports (`weir:plugin/log`, `clock`,
`inference`). Natively (unit tests) the log goes to stderr, the clock is the
system's, and `infer` calls the handler installed with
`weir.testing.set_infer_handler`.
"""

import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Union

try:
    from wit_world.imports import log as _wit_log  # type: ignore[import-not-found]
    from wit_world.imports import clock as _wit_clock  # type: ignore[import-not-found]
except ImportError:
    _wit_log = None
    _wit_clock = None

try:
    from wit_world.imports import inference as _wit_inference  # type: ignore[import-not-found]
except ImportError:
    _wit_inference = None


# ---------------------------------------------------------------- log -------

_LEVELS = ("trace", "debug", "info", "warn", "error")


class _Log:
    """`weir.log.info("...")` (and `trace`, `debug`, `warn`, `error`), or
    `weir.log("...", level="warn")`: a line in the host's log, tagged with the
    stage and the plugin. Sent whatever the host's level: keep it out of
    per-event paths."""

    def __call__(self, message: str, level: str = "info") -> None:
        if level not in _LEVELS:
            raise ValueError(f"log level must be one of {', '.join(_LEVELS)}, not {level!r}")
        message = str(message)
        if _wit_log is not None:
            _wit_log.log(_wit_log.Level[level.upper()], message)
        else:
            print(f"[{level}] {message}", file=sys.stderr)

    def trace(self, message: str) -> None:
        self(message, "trace")

    def debug(self, message: str) -> None:
        self(message, "debug")

    def info(self, message: str) -> None:
        self(message, "info")

    def warn(self, message: str) -> None:
        self(message, "warn")

    def error(self, message: str) -> None:
        self(message, "error")


log = _Log()


def now_ms() -> int:
    """The host's wall clock, milliseconds since the Unix epoch."""
    if _wit_clock is not None:
        return _wit_clock.now_ms()
    return int(time.time() * 1000)


# ---------------------------------------------------------------- models ----


class InferError(Exception):
    """A model call failed. `kind` is `unknown-model`, `invalid-input`,
    `runtime` or `unavailable`; the message says why, as the host said it.
    Not caught, it sends the events to the dead-letter output."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind

    def __str__(self) -> str:
        detail = self.args[0] if self.args else ""
        if self.kind == "unknown-model":
            return f"no model named `{detail}` in the pipeline"
        if self.kind == "invalid-input":
            return f"invalid model input: {detail}"
        if self.kind == "runtime":
            return f"model run failed: {detail}"
        return f"inference unavailable: {detail}"


class Tensor:
    """A named tensor: `shape[0]` is the row (batch) dimension, `data` the
    elements row-major (a flat list), `dtype` `"f32"` or `"i64"`."""

    __slots__ = ("name", "shape", "data", "dtype")

    def __init__(self, name: str, shape: Sequence[int], data: Sequence[Union[int, float]], dtype: str = "f32"):
        if dtype not in ("f32", "i64"):
            raise ValueError(f"tensor dtype must be 'f32' or 'i64', not {dtype!r}")
        self.name = name
        self.shape = [int(d) for d in shape]
        self.data = data if isinstance(data, list) else list(data)
        self.dtype = dtype

    @classmethod
    def f32(cls, name: str, shape: Sequence[int], data: Sequence[float]) -> "Tensor":
        return cls(name, shape, data, "f32")

    @classmethod
    def i64(cls, name: str, shape: Sequence[int], data: Sequence[int]) -> "Tensor":
        return cls(name, shape, data, "i64")

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 0

    def __repr__(self) -> str:
        return f"Tensor({self.name!r}, {self.shape}, <{len(self.data)} {self.dtype}>)"


InferHandler = Callable[[str, List[Tensor]], List[Tensor]]
_native_handler: Optional[InferHandler] = None

_KINDS = {
    "InferError_UnknownModel": "unknown-model",
    "InferError_InvalidInput": "invalid-input",
    "InferError_Runtime": "runtime",
    "InferError_Unavailable": "unavailable",
}


def set_infer_handler(handler: Optional[InferHandler]) -> None:
    global _native_handler
    _native_handler = handler


def infer(model: str, inputs: Union[Sequence[Tensor], Dict[str, Tensor]]) -> List[Tensor]:
    """Runs the pipeline's model `model` (`[models.NAME]`) on `inputs` (one
    tensor per model input); returns its outputs, each with as many rows as
    the inputs. Put all the rows of a batch in one call (`@weir.batch`).
    Raises `InferError`."""
    tensors = list(inputs.values()) if isinstance(inputs, dict) else list(inputs)
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"infer takes weir.Tensor inputs, not {type(t).__name__}")
    if _wit_inference is not None:
        return _wit_infer(model, tensors)
    if _wit_log is not None:  # In a component built for the world `transform`.
        raise InferError(
            "unavailable",
            "this plugin was built for the world `transform`, which has no models: "
            'set world = "transform-with-inference" under [tool.weir] in its pyproject.toml',
        )
    if _native_handler is None:
        raise InferError(
            "unavailable",
            "no host outside WebAssembly: install a stand-in with "
            "weir.testing.set_infer_handler in your test",
        )
    return list(_native_handler(model, tensors))


def _wit_infer(model: str, tensors: List[Tensor]) -> List[Tensor]:
    from componentize_py_types import Err  # type: ignore[import-not-found]

    w = _wit_inference
    raw = [
        w.Tensor(
            t.name,
            t.shape,
            w.TensorData_F32(t.data) if t.dtype == "f32" else w.TensorData_S64(t.data),
        )
        for t in tensors
    ]
    try:
        out = w.infer(model, raw)
    except Err as e:
        err = e.value
        raise InferError(_KINDS.get(type(err).__name__, "runtime"), str(err.value)) from None
    return [
        Tensor(
            t.name,
            t.shape,
            t.data.value,
            "f32" if isinstance(t.data, w.TensorData_F32) else "i64",
        )
        for t in out
    ]
