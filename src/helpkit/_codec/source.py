"""Building a generated codec function: its lines, the objects they name, its compiled code.

A :class:`Source` collects the lines of one function and the objects they refer to (classes,
enum tables, nested codecs) under generated names, then compiles it. The text is registered
with :mod:`linecache` under the function's file name, ``<helpkit codec: ...>``, so tracebacks
and debuggers show the generated line that failed; it is also kept on the function as
``__source__`` (``print(decoder(Ticket).__source__)``).
"""

from __future__ import annotations

import itertools
import linecache
import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["Source"]

_REGISTER = threading.Lock()


def _register(label: str, text: str) -> str:
    """A file name for generated ``text``, registered with linecache.

    ``<helpkit codec: LABEL>``, numbered when that name already holds other text (two
    classes with the same qualified name, say). The entry has no modification time, so
    ``linecache.checkcache`` keeps it (``linecache.clearcache()`` drops it: tracebacks then
    show no line, as before; ``__source__`` still has the text).
    """
    lines = text.splitlines(keepends=True)
    with _REGISTER:
        for number in itertools.count(1):
            suffix = "" if number == 1 else f" #{number}"
            filename = f"<helpkit codec: {label}{suffix}>"
            entry = linecache.cache.get(filename)
            if entry is None or (len(entry) == 4 and entry[2] == lines):
                linecache.cache[filename] = (len(text), None, lines, filename)
                return filename
    raise AssertionError("unreachable")  # pragma: no cover


class Source:
    """The lines of one generated function and the names they use."""

    def __init__(self, names: Mapping[str, Any]) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = dict(names)
        self._counter = itertools.count()

    def fresh(self, stem: str) -> str:
        """A new local or global name."""
        return f"{stem}{next(self._counter)}"

    def ref(self, stem: str, value: Any) -> str:
        """The global name under which the function sees ``value`` (one name per object)."""
        for name, known in self.names.items():
            if known is value and name.startswith(f"_{stem}"):
                return name
        name = self.fresh(f"_{stem}")
        self.names[name] = value
        return name

    def add(self, indent: int, line: str) -> None:
        """Append a line, indented by ``indent`` levels."""
        self.lines.append("    " * indent + line)

    def build(self, name: str, label: str) -> Any:
        """Compile the lines and return the function they define as ``name``."""
        text = "\n".join(self.lines) + "\n"
        filename = _register(label, text)
        code = compile(text, filename, "exec")
        exec(code, self.names)  # the text is built from field names and type hints only
        function = self.names[name]
        function.__source__ = text
        return function
