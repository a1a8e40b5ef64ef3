"""The route names of an output batch, shared by both contracts' writers:
each named route once, by index in order of first use (`None`, the default
output, has no entry)."""

from typing import Dict, List


class Routes:
    __slots__ = ("names", "_index")

    def __init__(self) -> None:
        self.names: List[str] = []
        self._index: Dict[str, int] = {}

    def index(self, route: str) -> int:
        """The index of `route`, added at the end if new."""
        r = self._index.get(route)
        if r is None:
            r = self._index[route] = len(self.names)
            self.names.append(route)
        return r
