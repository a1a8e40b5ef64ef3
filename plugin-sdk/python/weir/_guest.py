"""The component's export, `weir:plugin/transformer`.

componentize-py looks for a class named `Transformer` in the app module; the
build's generated entry module imports the plugin's module (which registers
its function with a decorator) and then this class. Plugin authors never
write it.
"""

from componentize_py_types import Err  # type: ignore[import-not-found]

from . import _runtime


class Transformer:
    def init(self, params: str) -> None:
        try:
            _runtime.start(params)
        except Exception as e:
            raise Err(_runtime.message(e)) from None

    def process(self, input):  # noqa: A002 (the WIT parameter's name)
        return _runtime.process(input)
