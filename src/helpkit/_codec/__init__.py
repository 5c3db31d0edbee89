"""The JSON-safe form of helpkit's values: one compiled encoder and decoder per type.

Stores write tickets, events and people in this form and read them back on every commit and
every load, and :mod:`helpkit.serialize` offers it to hosts. The form follows the type hints
of the attrs classes: an object is a dict of its ``__init__`` fields (by their names), enums
are their values, instants ISO 8601 text in UTC, dates ISO text, durations ISO 8601 text
(:mod:`helpkit._codec.durations`), bytes standard base64 text
(:mod:`helpkit._codec.binary`), frozensets sorted lists, tuples lists, custom field values
as :func:`helpkit.fields.encode_value` writes them, ``None`` as ``null``.

For each type :func:`encoder` and :func:`decoder` build, once, a function of straight-line
Python (one line per field, no loop over fields, no wrapper per value), compiled with ``exec``
and registered with :mod:`linecache`, so a traceback through it shows the generated line
(``<helpkit codec: decode helpkit.tickets.Ticket>``); ``function.__source__`` holds the whole
text. Decoding checks what it reads (the JSON types, enum values, aware instants) and builds
objects as their class would, so converters and validators run on stored data as they do on new
data. Malformed data raises :class:`~helpkit.errors.SchemaError` where a check names it, and
otherwise the ``TypeError``/``ValueError`` of the failing conversion; callers turn those into
their own errors. Modules: :mod:`~helpkit._codec.types` (what a type hint asks for),
:mod:`~helpkit._codec.source` (building and registering the functions),
:mod:`~helpkit._codec.encode`, :mod:`~helpkit._codec.decode`,
:mod:`~helpkit._codec.durations`, :mod:`~helpkit._codec.binary`. The closure-based codec the
compiled one is tested against lives in ``tests/codec_reference.py``.
"""

from __future__ import annotations

from helpkit._codec.decode import Decode, decoder
from helpkit._codec.encode import Encode, encoder

__all__ = ["Decode", "Encode", "decoder", "encoder"]
