"""The component's export, `weir:plugin/transformer`.

componentize-py looks for a class named `Transformer` in the app module; the
build's generated entry module imports the plugin's module (which registers
its function with a decorator) and then this class. Plugin authors never
write it. The contract the component was built against (`_wit.CONTRACT`)
picks the methods: 0.2.0's `init` returns the plugin's info, its `process`
takes and returns one packed buffer, and it has `check-state`; 0.1.x's
`process` takes and returns records.
"""

from componentize_py_types import Err  # type: ignore[import-not-found]

from . import _runtime, _wit

if _wit.CONTRACT == "0.2":

    class Transformer:
        def init(self, params: str):  # -> types.PluginInfo
            try:
                _runtime.start(params)
            except Exception as e:
                raise Err(_runtime.message(e)) from None
            # Python plugins keep no host state (not keyed).
            return _wit.PluginInfo(False)

        def process(self, input: bytes) -> bytes:  # noqa: A002 (the WIT parameter's name)
            return _runtime.process_packed(input)

        def check_state(self, sample: bytes) -> None:
            # Not keyed: no stored state to check.
            return None

else:

    class Transformer:  # type: ignore[no-redef]
        def init(self, params: str) -> None:
            try:
                _runtime.start(params)
            except Exception as e:
                raise Err(_runtime.message(e)) from None

        def process(self, input):  # noqa: A002 (the WIT parameter's name)
            return _runtime.process_records(input)
