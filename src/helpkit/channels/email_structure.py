"""The structure parse of an email: the standard library's feed parser with the modern
policy (``email.policy.default``), the parser of record of :mod:`helpkit.channels.email_in`,
run without the work that does not change its answers.

- :data:`POLICY`: ``email.policy.default``, each header value parsed once (a bounded cache),
  a ``Content-Type`` in plain form not parsed at all (:class:`_PlainContentType`: the
  header object's text made from the value, its parameters read (:func:`plain_params`), the
  object built only if more is read of it), and each part remembering its content type till
  its headers change (:class:`_Message`);
- :func:`structure`: ``BytesParser(policy=POLICY).parsebytes(data)``, run through the feed
  parser's own code (``_parsegen``, the very code of this Python's ``email.feedparser``) with
  the payload-end search answered from the text's tail (:class:`_TailEol`), each multipart's
  boundary matched without compiling its expression (:class:`_Boundary`), and the text's lines
  handed over at once, each run of base64 lines as one line (:func:`_lines`).

``tests/test_email_in_feedparser.py`` holds the parsed tree equal to ``BytesParser``'s and each
shortcut equal to what it stands for; ``tests/test_email_in_reference.py`` holds the headers'
answers, and every ``InboundMessage``, equal to the standard library's.
"""

from __future__ import annotations

import functools
import io
import operator
import re
import types
from email import feedparser as _feedparser
from email import policy as email_policy
from email.message import EmailMessage, Message
from email.policy import EmailPolicy
from typing import Final, cast

__all__ = ["CACHED_HEADERS", "MAX_CACHED_CHARS", "POLICY", "plain_params", "structure"]

# ------------------------------------------------------------------ the policy

CACHED_HEADERS: Final = 256
"""Parsed header values kept, least recently used first out (a parsed value with its parse
tree is some 20 KB: a few MB at most)."""
MAX_CACHED_CHARS: Final = 2000
"""Longer header values are parsed at every fetch, not kept."""
_CR_OR_LF: Final = re.compile("[\r\n]")


_PLAIN_CONTENT_TYPE: Final = re.compile(
    r"[A-Za-z0-9._+-]{1,64}/[A-Za-z0-9._+-]{1,127}"
    r'(?:; [A-Za-z0-9_-]{1,40}=(?:"[ !#-\[\]-~]{1,500}"|[A-Za-z0-9._+-]{1,500})){0,8}'
)
"""A Content-Type value in plain form: ``type/subtype``, then parameters each after ``"; "``,
a name and a value, quoted (printable ASCII but ``"`` and ``\\``) or a token."""
_PLAIN_PARAMETER: Final = re.compile(r'; ([A-Za-z0-9_-]+)=(?:"([^"]*)"|([^;]*))')


class _PlainContentType(str):
    """A Content-Type header value in plain form (:data:`_PLAIN_CONTENT_TYPE`, no parameter
    named twice, no ``=?``) as the text of the header object ``email.policy.default`` builds
    for it: the value with every parameter's value quoted (``tests/test_email_in_reference.py``
    holds the two texts equal). That text is all the message's methods read of a header
    (``get_content_type()``, ``get_param()``...: each reads ``str(header)``); any other
    attribute (``params``, ``defects``...) is read from the header object itself, built then.
    A multipart's Content-Type is unique to its message (its boundary), so no cache holds it:
    its parse through the header registry (some 0.15 ms) is spared.
    """

    _name: str
    _raw: str
    _params: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, name: str, value: str) -> _PlainContentType | None:
        if not _PLAIN_CONTENT_TYPE.fullmatch(value) or "=?" in value:
            return None
        params = _PLAIN_PARAMETER.findall(value)
        if len({found[0].lower() for found in params}) < len(params):
            return None
        main = value.partition(";")[0]
        made = cls(main + "".join(f'; {key}="{quoted or token}"' for key, quoted, token in params))
        made._name = name
        made._raw = value
        made._params = tuple((key.lower(), quoted or token) for key, quoted, token in params)
        return made

    def __getattr__(self, attribute: str) -> object:
        if attribute.startswith("__") or attribute in ("_name", "_raw", "_params"):
            raise AttributeError(attribute)
        return getattr(email_policy.default.header_factory(self._name, self._raw), attribute)


def plain_params(value: object) -> tuple[tuple[str, str], ...] | None:
    """The parameters of ``value``, a header value fetched through :data:`POLICY`, when it
    is a Content-Type in plain form: each name lower-case with its value as
    ``Message.get_param`` gives it, in order (None for any other value: ask ``get_param``).

    In plain form a value holds no ``"``, no ``\\`` and its name no RFC 2231 ``*``, so the
    standard library's unquoting, RFC 2231 decoding and quoting again give back the value as
    written; the first parameter of a name is the one ``get_param`` answers. Read so, a
    parameter costs a tuple lookup, not a split of the value, a decode and two unquotes
    (``tests/test_email_in_cpu_equivalence.py`` holds the two equal)."""
    return value._params if isinstance(value, _PlainContentType) else None


@functools.lru_cache(maxsize=CACHED_HEADERS)
def _parsed_header(name: str, value: str) -> str:
    if name.lower() == "content-type":
        plain = _PlainContentType.of(name, value)
        if plain is not None:
            return plain
    return email_policy.default.header_factory(name, value)  # type: ignore[no-any-return]


class _OnceParsedPolicy(EmailPolicy):
    """``email.policy.default``, except that a header value is parsed once, not at every
    ``get``.

    The standard library's modern policy builds a header object (a full RFC 5322 parse) each
    time a header is fetched: ``get_content_type()``, ``get_param()``, ``get_boundary()``,
    ``get_content_disposition()`` all fetch ``Content-Type`` or ``Content-Disposition`` again,
    during the structure parse and after it, some twenty parses a message. Here the header
    object for a (name, raw value) pair comes from a bounded cache: the same object the
    default policy would build, and header objects are immutable, so every answer is the one
    ``email.policy.default`` gives (``tests/test_email_in_reference.py`` holds the parser to
    that). Common values (``text/plain; charset="utf-8"``) are parsed once per process. A
    Content-Type in plain form is not parsed at all: :class:`_PlainContentType` gives the
    header object's text, and the object itself only if more is read of it.
    """

    def header_fetch_parse(self, name: str, value: str) -> str:
        if hasattr(value, "name"):
            return value
        if "\n" in value or "\r" in value:
            value = _CR_OR_LF.sub("", value)  # as the default policy does (not splitlines)
        if len(value) > MAX_CACHED_CHARS:
            return self.header_factory(name, value)  # type: ignore[no-any-return]
        return _parsed_header(name, value)


class _Message(EmailMessage):
    """``email.message.EmailMessage``, except that ``get_content_type()`` remembers its
    answer till the headers change.

    The feed parser asks a part for its content type some five times (``multipart/digest``?
    ``message/delivery-status``? ``message/*``? ``multipart/*``? the parent's ``multipart/*``
    again), and :mod:`helpkit.channels.email_in` asks once more: each time a walk over the
    part's headers, a fetch through the policy and a split of the value. The answer depends
    on the headers (each a name and value pair, a tuple never changed in place), the default
    type and the policy alone, so it is kept with them and given again while they are the
    same: the same policy, an equal default type and the very same header objects in the
    same order (compared by identity, not equality: a raw value and a parsed header of the
    same text can answer differently). A header set, replaced or deleted afterwards is a new
    object, or a new list, and the answer is worked out again. The kept list holds its items
    alive, so no new header can take an old one's identity.
    """

    _content_type_read: tuple[object, list[object], str, str] | None = None

    def get_content_type(self) -> str:
        headers: list[object] = self._headers  # type: ignore[attr-defined]
        default: str = self._default_type  # type: ignore[attr-defined]
        read = self._content_type_read
        if (
            read is not None
            and read[0] is self.policy
            and len(read[1]) == len(headers)
            and all(map(operator.is_, read[1], headers))
            and read[2] == default
        ):
            return read[3]
        found = super().get_content_type()
        self._content_type_read = (self.policy, list(headers), default, found)
        return found


POLICY: Final = _OnceParsedPolicy(
    header_factory=email_policy.default.header_factory, message_factory=_Message
)


# ------------------------------------------------------------------ the structure parse


class _TailMatch:
    """What :class:`_TailEol` finds: the line break that ends a text (``group()``)."""

    __slots__ = ("_found",)

    def __init__(self, found: str) -> None:
        self._found = found

    def group(self, *_: object) -> str:
        return self._found


class _TailEol:
    """``re.compile(r"(\\r\\n|\\r|\\n)\\Z").search`` answered from the text's last two
    characters.

    The standard library's feed parser strips the line break that RFC 2046 gives to a
    boundary from the end of each part's payload with that search, and the regular expression
    engine tries it at every position of the payload: some 20 microseconds a kilobyte, a
    millisecond for a 50 KB attachment. The only match it can find is at the end: ``\\r\\n``
    when the text ends so (the leftmost try that reaches the end), else a last ``\\r`` or
    ``\\n``. ``tests/test_email_in_feedparser.py`` holds this equal to the regular expression.
    """

    __slots__ = ()

    def search(self, text: str) -> _TailMatch | None:
        if text.endswith("\r\n"):
            return _TailMatch("\r\n")
        if text.endswith(("\r", "\n")):
            return _TailMatch(text[-1])
        return None


_BOUNDARY_HEAD: Final = "(?P<sep>"
_BOUNDARY_TAIL: Final = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_AFTER_SEPARATOR: Final = re.compile(_BOUNDARY_TAIL[1:])
_ESCAPED: Final = re.compile(r"\\(.)", re.DOTALL)


class _Boundary:
    """``re.compile("(?P<sep>" + re.escape(separator) + _BOUNDARY_TAIL)`` for one separator,
    without compiling it: the separator is a literal, so the expression matches a line that
    starts with it where the rest of the expression (one compiled expression for every
    separator, :data:`_AFTER_SEPARATOR`) matches after it, with the same groups ``end``,
    ``ws`` and ``linesep``, the ones the feed parser reads.

    The feed parser compiles that expression for each multipart, and a boundary is unique to
    its message, so the regular expression cache never holds it: some 0.1 ms a multipart. In
    its place a line costs a Python call (the prefix test): fewer than the compile's worth
    for a message under a thousand lines, which the runs of base64 lines handed over as one
    (:func:`_lines`) leave most messages with attachments. ``tests/test_email_in_feedparser.py``
    holds it equal to the expression.
    """

    __slots__ = ("_after", "_separator")

    def __init__(self, separator: str) -> None:
        self._separator = separator
        self._after = len(separator)

    def match(self, line: str) -> re.Match[str] | None:
        if line.startswith(self._separator):
            return _AFTER_SEPARATOR.match(line, self._after)
        return None


class _Re:
    """The :mod:`re` the feed parser's structure parse sees: ``compile`` of a boundary's
    expression gives a :class:`_Boundary`, of anything else the real module's pattern."""

    escape = staticmethod(re.escape)

    def compile(self, pattern: str, flags: int = 0) -> _Boundary | re.Pattern[str]:
        if not flags and pattern.startswith(_BOUNDARY_HEAD) and pattern.endswith(_BOUNDARY_TAIL):
            escaped = pattern[len(_BOUNDARY_HEAD) : -len(_BOUNDARY_TAIL)]
            separator = _ESCAPED.sub(r"\1", escaped)
            if re.escape(separator) == escaped:
                return _Boundary(separator)
        return re.compile(pattern, flags)


def _feed_parser_class(*, compile_boundaries: bool) -> type[_feedparser.FeedParser[Message]]:
    """The standard library's ``FeedParser``, its structure parse (``_parsegen``, the very
    code of this Python's ``email.feedparser``) run with :class:`_TailEol` for the module's
    ``NLCRE_eol`` and, unless ``compile_boundaries``, :class:`_Re` for its ``re``: the same
    messages, without the search over each whole payload (or a compile per multipart). A
    Python whose feed parser does not search so gets its ``FeedParser`` unchanged; one that
    compiles no expression per multipart (3.13 matches a boundary by a prefix test and one
    shared expression, as :class:`_Boundary` does) keeps its ``re``."""
    stock = cast("type[_feedparser.FeedParser[Message]]", _feedparser.FeedParser)
    parsegen = getattr(stock, "_parsegen", None)
    if not isinstance(parsegen, types.FunctionType) or parsegen.__closure__:
        return stock
    names = set(parsegen.__code__.co_names)
    if "NLCRE_eol" not in names:
        return stock
    namespace = dict(vars(_feedparser))
    namespace["NLCRE_eol"] = _TailEol()
    if not compile_boundaries and "re" in names:
        namespace["re"] = _Re()
    fast = types.FunctionType(
        parsegen.__code__, namespace, parsegen.__name__, parsegen.__defaults__
    )
    return type("_FeedParser", (stock,), {"_parsegen": fast, "__module__": __name__})


_FEED_PARSER: Final = _feed_parser_class(compile_boundaries=False)
_COMPILING_FEED_PARSER: Final = _feed_parser_class(compile_boundaries=True)
_COMPILE_FROM: Final = 400
"""Lines handed over from which a multipart's boundary expression is compiled after all: a
line read inside a multipart costs a Python call with :class:`_Boundary` (some 0.25
microseconds), against some 0.1 ms for a compile."""

_BASE64_START: Final = re.compile(r"\n\r?\n([A-Za-z0-9+/=]{16,}\r?\n)")
"""A blank line, then a line of base64 (16 characters or more): where a run may begin, as a
MIME part's base64 body begins after its headers. A search for it goes from line break to
line break (some 0.6 microseconds a kilobyte, where a search for any line of base64 looked
at every character, ten times as long)."""
_BASE64_RUN: Final = re.compile(r"(?m)^(?:[A-Za-z0-9+/=]++(?:\r\n|\r|\n)){2,}")
"""Two or more whole lines of base64 characters, each with its line break."""
_MERGE_FROM: Final = 4096
"""Bytes from which :func:`structure` looks for runs of lines to hand over as one."""


def _split_lines(text: str) -> list[str]:
    """``text`` cut into lines as the feed parser cuts it (``\\r\\n``, ``\\r``, ``\\n``)."""
    return io.StringIO(text, newline="").readlines() if text else []


def _even_lines(data: bytes, start: int, stop: int) -> bool:
    """Whether ``data[start:stop]`` is lines as wide as its first one, each ending as the
    first does (the last may be shorter and end in ``\\r\\n`` or ``\\n``), without another
    line break: so no empty line. Slices and counts, no loop over the lines."""
    first_end = data.find(b"\n", start, stop)
    crlf = data[first_end - 1 : first_end] == b"\r"
    width = first_end + 1 - start
    full, rest = divmod(stop - start, width)
    grid = start + full * width
    if data[start + width - 1 : grid : width] != b"\n" * full:
        return False
    if crlf and data[start + width - 2 : grid : width] != b"\r" * full:
        return False
    last_crlf = False
    if rest:
        if not data.endswith(b"\n", grid, stop):
            return False
        last_crlf = data.endswith(b"\r\n", grid, stop)
        if rest <= 1 + last_crlf:
            return False  # an empty last line
    if data.count(b"\n", start, stop) != full + bool(rest):
        return False
    if crlf:
        return data.count(b"\r", start, stop) == full + last_crlf
    # No \r in the lines as wide as the first (a search, quicker than a count), one at most
    # in the last.
    return data.find(b"\r", start, grid) < 0 and data.count(b"\r", grid, stop) == last_crlf


def _lines(text: str, data: bytes) -> list[str]:
    """The lines the feed parser reads in ``text`` (``data`` decoded, one character a byte),
    each run of lines that starts with a line of base64 after a blank line and holds no ``-``
    and no empty line as one line.

    The parser looks at a line's content only to tell a header line (``headerRE``), a blank
    line (``NLCRE``) or a boundary (a line starting with ``--``) from the rest, and a header
    block can start only at the first line of a message, after a boundary or after a blank
    line. In such a run no line is blank or a boundary, and its first line, base64, is not a
    header line: a header block ends before it (with the same defect), and a body, a preamble
    or an epilogue takes its text whole, whether it comes as one line or as many. A 50 KB
    attachment is some 900 lines of base64, each a few Python calls of the parser's; as one
    line it is one. A run reaches from its first line to the line holding the next ``-``;
    one whose lines are not all alike (:func:`_even_lines`) is cut into the runs of base64
    lines it holds (:data:`_BASE64_RUN`, looking at every character).
    """
    lines: list[str] = []
    done = 0  # text[:done] is in lines
    at = 0
    while (found := _BASE64_START.search(text, at)) is not None:
        start = found.start(1)
        dash = data.find(b"-", start)
        stop = dash if dash >= 0 else len(data)
        stop = max(data.rfind(b"\n", start, stop), data.rfind(b"\r", start, stop)) + 1
        if _even_lines(data, start, stop):
            runs = [(start, stop)]
        else:
            runs = [(m.start(), m.end()) for m in _BASE64_RUN.finditer(text, start, stop)]
        for run_start, run_stop in runs:
            lines += _split_lines(text[done:run_start])
            lines.append(text[run_start:run_stop])
            done = run_stop
        at = stop
    lines += _split_lines(text[done:])
    return lines


def structure(
    data: bytes, *, merge_from: int = _MERGE_FROM, compile_from: int = _COMPILE_FROM
) -> Message:
    """``BytesParser(policy=POLICY).parsebytes(data)``, through the feed parser's own code
    (:func:`_feed_parser_class`), its lines handed over at once; from ``merge_from`` bytes
    on, each run of base64 lines as one (:func:`_lines`); from ``compile_from`` lines on,
    each multipart's boundary expression compiled, as the standard parser does, rather than
    matched by :class:`_Boundary`."""
    text = data.decode("ascii", "surrogateescape")
    lines = _lines(text, data) if len(data) >= merge_from else _split_lines(text)
    parsing = _COMPILING_FEED_PARSER if len(lines) >= compile_from else _FEED_PARSER
    parser = parsing(policy=POLICY)
    parser._input.pushlines(lines)  # type: ignore[attr-defined]
    return parser.close()
