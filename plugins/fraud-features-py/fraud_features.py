"""`fraud-features-py`: scores card transactions with the pipeline's fraud
model, in Python. The same behaviour as the Rust `plugins/fraud-features`
(the integration tests compare them on the same events):

per batch, each event's features (features.py), ONE `weir.infer` call for all
the rows, `"score": <f32>` appended to each event's JSON object (the bytes are
edited, not re-serialized), every event to the default output and a copy of
those scoring above `threshold` to `route`.
"""

import json
import struct
from dataclasses import dataclass

import weir
from features import WIDTH, features


@dataclass
class Params:
    model: str = "fraud"
    input: str = "features"
    threshold: float = 0.3
    route: str = "alerts"

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        if not (self.model and self.input and self.route):
            raise ValueError("model, input and route cannot be empty")


_F32 = struct.Struct("<f")
# json.loads(bytes) guesses the encoding first; events are UTF-8.
_decode = json.JSONDecoder().decode


def _shortest(x: float, want: bytes) -> "tuple[int, str]":
    """The fewest significant digits (1..9) whose decimal reads back as the
    f32 `want`, and that decimal in exponent form. Round-tripping is
    monotonic in the digits (every k-digit decimal is also a (k+1)-digit
    one) and 9 always suffice; most scores need 7 or 8, so the search starts
    there (~2 formats per score)."""
    pack = _F32.pack
    text = f"{x:.6e}"
    if pack(float(text)) == want:  # 7 digits suffice: maybe fewer
        p = 7
        while p > 1:
            shorter = f"{x:.{p - 2}e}"
            if pack(float(shorter)) != want:
                break
            p, text = p - 1, shorter
        return p, text
    text = f"{x:.7e}"
    if pack(float(text)) == want:
        return 8, text
    return 9, f"{x:.8e}"


def f32_text(x: float) -> str:
    """The shortest decimal that reads back as the same f32, without an
    exponent (what Rust's `{}` prints for an f32)."""
    p, text = _shortest(x, _F32.pack(x))
    at = text.index("e")
    point = int(text[at + 1 :]) + 1  # digits before the decimal point
    if 0 <= p - point:
        # The same digits as fixed-point: rounding at the same decimal place.
        fixed = f"{x:.{p - point}f}"
        if "." in fixed:
            fixed = fixed.rstrip("0").rstrip(".")
        return fixed
    mantissa = text[:at]
    sign = "-" if mantissa.startswith("-") else ""
    mantissa = mantissa.lstrip("-").replace(".", "").rstrip("0") or "0"
    return f"{sign}{mantissa}{'0' * (point - len(mantissa))}"


def append_score(value: bytes, score: float) -> bytes:
    body = value.rstrip()
    if not body.endswith(b"}"):
        raise weir.Error("event value is not a JSON object")
    return body[:-1] + b',"score":' + f32_text(score).encode() + b"}"


@weir.batch
def score(events, params: Params):
    rows = []
    parsed = []  # per event: its row index, or the exception
    for ev in events:
        try:
            rows.extend(features(_decode(ev.value.decode())))
            parsed.append(len(rows) // WIDTH - 1)
        except ValueError as e:  # JSON errors are ValueErrors too
            reason = str(e)
            if not reason.startswith(("not a card transaction", "negative")):
                reason = f"not a card transaction: {reason}"
            parsed.append(weir.Error(reason))
    n = len(rows) // WIDTH
    scores = []
    if n:
        try:
            out = weir.infer(params.model, [weir.Tensor.f32(params.input, [n, WIDTH], rows)])
        except weir.InferError as e:
            failed = weir.Error(f"model `{params.model}`: {e}")
            return [p if isinstance(p, Exception) else failed for p in parsed]
        if not out or out[0].dtype != "f32" or len(out[0].data) != n:
            got = "no output" if not out else f"{len(out[0].data)} {out[0].dtype} scores"
            failed = weir.Error(f"model `{params.model}`: {got} for {n} rows (expected f32 [N, 1])")
            return [p if isinstance(p, Exception) else failed for p in parsed]
        scores = out[0].data
    results = []
    for ev, p in zip(events, parsed):
        if isinstance(p, Exception):
            results.append(p)
            continue
        s = scores[p]
        try:
            ev.value = append_score(ev.value, s)
        except weir.Error as e:
            results.append(e)
            continue
        if s > params.threshold:
            results.append([ev, weir.Output.to(params.route, ev)])
        else:
            results.append(ev)
    return results
