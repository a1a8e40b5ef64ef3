"""Benchmark fixture `py-raw`: what a contract's crossing costs a Python
guest, without the SDK. On 0.1.1 (built with `--wit wit/released/0.1.1`)
componentize-py lifts the whole `batch` record (a `bytes` buffer and one
dataclass per event, span, position and header) into Python objects before
`process` runs; on 0.2.0 (the default) the batch arrives as one `bytes`.
Either way this plugin then returns an empty output batch at once (every
event filtered out). The polyglot benchmark compares it with the SDK's
`drop` and `pass` modes on the same contract.
"""

import weir
from weir import _packed, _runtime, _wit

_EMPTY_RECORDS = _wit.OutputBatch(b"", [], [], [], [])
_EMPTY_PACKED = _packed.Packer().finish()


@weir.filter
def nothing(ev):  # never called: process is replaced below
    return False


def _records(batch):
    return _EMPTY_RECORDS


def _packed_batch(input):  # noqa: A002
    return _EMPTY_PACKED


_runtime.process_records = _records
_runtime.process_packed = _packed_batch
