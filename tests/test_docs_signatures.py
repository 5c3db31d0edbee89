"""The API pages show attrs classes' defaults as the class body writes them.

attrs generates ``__init__`` from source whose defaults read ``attr_dict['matrix'].default`` and
``NOTHING``; ``docs/_ext/attrs_signatures.py`` (an ``autodoc-process-signature`` hook) renders
them from the class instead. The docs build (``nox -s docs``) also checks the generated HTML.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest

import helpkit
from helpkit import DeskConfig, TicketQuery
from helpkit.holidays import HolidayRule, Holidays
from helpkit.people import Contact
from helpkit.sla import SlaPolicy

EXT = Path(__file__).resolve().parents[1] / "docs" / "_ext" / "attrs_signatures.py"


@pytest.fixture(scope="module")
def ext() -> ModuleType:
    spec = importlib.util.spec_from_file_location("attrs_signatures_under_test", EXT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _signature(ext: Any, cls: type) -> str:
    result = ext.process_signature(None, "class", cls.__qualname__, cls, {}, "(...)", None)
    assert result is not None, f"{cls.__qualname__} was not rewritten"
    text, annotation = result
    assert annotation is None
    assert isinstance(text, str)
    return text


def _attrs_classes() -> list[type]:
    found: dict[type, None] = {}
    for info in pkgutil.walk_packages(helpkit.__path__, "helpkit."):
        if info.name.startswith(("helpkit.testing", "helpkit.__main__")):
            continue
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if isinstance(obj, type) and attrs.has(obj) and obj.__module__ == module.__name__:
                found[obj] = None
    return list(found)


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        (
            DeskConfig,
            "(*, matrix=ITIL_MATRIX, workflow=DEFAULT_WORKFLOW, fields=FieldSet(),"
            " channels=dict(), reply_channel=None, webhooks=dict(), calendars=dict(), sla=None,"
            " tiers=None, escalation=EscalationRules(), intake=IntakeConfig(), secret_file=None,"
            " blobs=None,"
            " attachments=AttachmentLimits(), mailboxes=dict(), triggers=(), macros=(),"
            " automations=(), notifications=(), templates=dict(), routing=RoutingPolicies(),"
            " roles=builtin_roles(), csat=CsatConfig(), privacy=PrivacyConfig())",
        ),
        (
            TicketQuery,
            "(*, statuses=None, categories=None, assignee_ids=None, unassigned=False,"
            " group_ids=None, requester_ids=None, organization_ids=None, priorities=None,"
            " tags=frozenset(), deadline_before=None, next_check_before=None,"
            " sort=SortOrder.PRIORITY, limit=50, after=None)",
        ),
        (
            Contact,
            "(*, id, name, emails=(), phone=None, language=None, timezone=None,"
            " organization_id=None, vip=False, segment=None, created_at, updated_at, version=1,"
            " erased=False)",
        ),
        (
            SlaPolicy,
            "(name, calendar, targets, *, conditions=(), warn_at=(0.75,),"
            " pause_categories=DEFAULT_PAUSE_CATEGORIES, when=None)",
        ),
        (HolidayRule, "(rule, days=1)"),
        (Holidays, "(dates=frozenset(), rules=())"),
    ],
    ids=lambda x: x.__qualname__ if isinstance(x, type) else "",
)
def test_defaults_as_written(ext: Any, cls: type, expected: str) -> None:
    assert _signature(ext, cls) == expected


def test_every_attrs_class_of_the_package(ext: Any) -> None:
    classes = _attrs_classes()
    assert len(classes) > 40
    for cls in classes:
        if not ext.has_generated_init(cls):
            continue
        text = _signature(ext, cls)
        assert "attr_dict" not in text and "NOTHING" not in text, (cls, text)
        # The parameters are the constructor's, in its order, with the same kinds.
        shown = inspect.signature(cls)
        assert list(ext.attrs_signature(cls).parameters) == list(shown.parameters), cls
        for name, param in ext.attrs_signature(cls).parameters.items():
            assert param.kind == shown.parameters[name].kind, (cls, name)
            assert (param.default is param.empty) == (
                shown.parameters[name].default is param.empty
            ), (cls, name)


def _plain_factory() -> list[int]:
    return [1]


@attrs.frozen
class _Base:
    size: int = 3
    _secret: str = attrs.field(default="s", alias="secret")


@attrs.frozen(kw_only=True)
class _Child(_Base):
    size: int = attrs.field(default=4)
    items: list[int] = attrs.Factory(list)
    made: list[int] = attrs.field(factory=_plain_factory)
    odd: list[int] = attrs.field(factory=lambda: [2])
    selfish: int = attrs.field(default=attrs.Factory(lambda self: self.size * 2, takes_self=True))
    required: str


def test_factories_overrides_and_aliases(ext: Any) -> None:
    assert _signature(ext, _Child) == (
        "(secret='s', *, size=4, items=list(), made=_plain_factory(), odd=<factory>,"
        " selfish=<factory>, required)"
    )


def test_a_class_without_source_shows_its_values(ext: Any) -> None:
    from helpkit.queries import SortOrder

    made = attrs.make_class(
        "Made",
        {
            "order": attrs.field(default=SortOrder.PRIORITY),
            "tags": attrs.field(factory=frozenset),
            "odd": attrs.field(factory=lambda: 1),
            "count": attrs.field(default=2),
        },
    )
    assert _signature(ext, made) == (
        "(order=SortOrder.PRIORITY, tags=frozenset(), odd=<factory>, count=2)"
    )


def test_other_objects_are_left_alone(ext: Any) -> None:
    @attrs.define(init=False)
    class Custom:
        x: int = 1

        def __init__(self, y: int = 2) -> None:
            self.x = y

    assert ext.process_signature(None, "class", "Custom", Custom, {}, "(y=2)", None) is None
    assert ext.process_signature(None, "class", "Path", Path, {}, "(*args)", None) is None
    assert ext.process_signature(None, "function", "f", len, {}, "(obj)", None) is None
    assert ext.process_signature(None, "method", "m", DeskConfig, {}, "()", None) is None
