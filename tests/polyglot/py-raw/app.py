"""Benchmark fixture `py-raw`: what the 0.1.1 contract's crossing costs a
Python guest, without the SDK. componentize-py lifts the whole `batch`
record (a `bytes` buffer and one dataclass per event, span, position and
header) into Python objects before `process` runs; this plugin then returns
an empty output batch at once (every event filtered out). The polyglot
benchmark compares it with the SDK's `drop` and `pass` modes.
"""

import weir
from weir import _runtime, _wit

_EMPTY = _wit.OutputBatch(b"", [], [], [], [])


@weir.filter
def nothing(ev):  # never called: process is replaced below
    return False


def _process(batch):
    return _EMPTY


_runtime.process = _process
