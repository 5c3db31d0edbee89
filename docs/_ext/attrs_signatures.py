"""Render the defaults of attrs-generated ``__init__`` signatures as the class body writes them.

attrs writes each class's ``__init__`` from generated source whose defaults read
``attr_dict['matrix'].default`` (and ``NOTHING`` for a factory). ``autodoc_preserve_defaults``
copies that text into the docs. This extension replaces it, on the ``autodoc-process-signature``
event, with the default as the class body writes it:

- ``matrix: PriorityMatrix = ITIL_MATRIX`` and ``attrs.field(default=SortOrder.PRIORITY)`` show
  the expression (``ITIL_MATRIX``, ``SortOrder.PRIORITY``);
- a factory (``attrs.field(factory=FieldSet)``, ``Factory(dict)``) shows as a call to it
  (``FieldSet()``, ``dict()``), or as ``<factory>`` when it is a lambda or takes ``self``;
- a field without a default (``attrs.NOTHING``) stays required.

When the class body cannot be read, the default's value is shown (an enum member as
``Class.NAME``, anything else by its ``repr``). Classes with their own ``__init__`` are left alone:
``autodoc_preserve_defaults`` reads their source correctly.

Sphinx is imported only by ``setup``: ``tests/test_docs_signatures.py`` calls
:func:`process_signature` without it.
"""

from __future__ import annotations

import ast
import enum
import inspect
import textwrap
from typing import Any

import attrs

_FIELD_CALLS = frozenset(
    {"attrs.field", "attr.field", "attr.ib", "attr.attrib", "attrs.attrib", "field", "attrib", "ib"}
)
_FACTORY_CALLS = frozenset({"attrs.Factory", "attr.Factory", "Factory"})
FACTORY = "<factory>"


class _Text:
    """A default shown as text (``inspect.Signature`` prints a default by its ``repr``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def has_generated_init(cls: object) -> bool:
    """Whether ``cls`` is an attrs class whose ``__init__`` attrs wrote."""
    if not (isinstance(cls, type) and attrs.has(cls)):
        return False
    code = getattr(cls.__dict__.get("__init__"), "__code__", None)
    return code is not None and code.co_filename.startswith("<attrs generated")


def _factory_text(factory: ast.expr, takes_self: bool) -> str:
    if takes_self or not isinstance(factory, ast.Name | ast.Attribute):
        return FACTORY
    return f"{ast.unparse(factory)}()"


def _written_default(value: ast.expr) -> str | None:
    """The default a class-body value gives its field, or None when it gives none."""
    if not isinstance(value, ast.Call):
        return ast.unparse(value)
    callee = ast.unparse(value.func)
    keywords = {k.arg: k.value for k in value.keywords if k.arg is not None}
    flag = keywords.get("takes_self")
    takes_self = isinstance(flag, ast.Constant) and flag.value is True
    if callee in _FACTORY_CALLS and value.args:
        return _factory_text(value.args[0], takes_self)
    if callee in _FIELD_CALLS:
        if "default" in keywords:
            return _written_default(keywords["default"])
        if "factory" in keywords:
            return _factory_text(keywords["factory"], False)
        return None
    return ast.unparse(value)


def _class_body_defaults(cls: type) -> dict[str, str]:
    """Each field's default as written in the class bodies of ``cls`` and its attrs bases."""
    written: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not attrs.has(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = next((n for n in tree.body if isinstance(n, ast.ClassDef)), None)
        for node in body.body if body is not None else ():
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and node.value is not None
            ):
                text = _written_default(node.value)
                if text is not None:
                    written[node.target.id] = text
    return written


def _value_text(default: Any) -> str:
    # attrs' stubs type Factory as the function that returns the default: hence the ignore.
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        factory = default.factory
        if default.takes_self or getattr(factory, "__name__", "<lambda>") == "<lambda>":
            return FACTORY
        return f"{factory.__qualname__}()"
    if isinstance(default, enum.Enum):
        return f"{type(default).__qualname__}.{default.name}"
    return repr(default)


def attrs_signature(cls: type) -> inspect.Signature:
    """The signature of ``cls(...)`` without annotations, defaults shown as written."""
    written = _class_body_defaults(cls)
    defaults = {
        f.alias: written.get(f.name) or _value_text(f.default)
        for f in attrs.fields(cls)
        if f.init and f.default is not attrs.NOTHING
    }
    signature = inspect.signature(cls)
    parameters = [
        p.replace(
            annotation=p.empty,
            default=_Text(defaults[p.name]) if p.name in defaults else p.empty,
        )
        for p in signature.parameters.values()
    ]
    return signature.replace(parameters=parameters, return_annotation=inspect.Signature.empty)


def process_signature(
    app: object,
    what: str,
    name: str,
    obj: object,
    options: object,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str, str | None] | None:
    """``autodoc-process-signature``: rewrite the signature of an attrs class."""
    if what not in {"class", "exception"} or not has_generated_init(obj):
        return None
    assert isinstance(obj, type)
    return str(attrs_signature(obj)), return_annotation


def setup(app: Any) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.autodoc")
    app.connect("autodoc-process-signature", process_signature)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
