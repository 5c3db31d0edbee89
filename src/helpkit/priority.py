"""Impact, urgency and the priority matrix (ITIL default)."""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Self, TypeVar

import attrs

from helpkit.errors import ValidationError

__all__ = ["ITIL_MATRIX", "Impact", "Priority", "PriorityMatrix", "Urgency"]


_L = TypeVar("_L", bound="_Level")


class _Level(enum.Enum):
    """Shared behaviour of impact and urgency: three ordered levels (no members here)."""

    @property
    def rank(self) -> int:
        """0 for high, 1 for medium, 2 for low (lower rank is more severe)."""
        return _RANK[str(self.value)]

    @classmethod
    def coerce(cls, value: object) -> Self:
        """Accept a member or its value in any case, or its initial (``"high"``, ``"H"``)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            member: Self | None = _by_text(cls).get(value.strip().lower())
            if member is not None:
                return member
        raise ValidationError(
            f"{cls.__name__.lower()} must be one of high, medium, low; got {value!r}"
        )


_RANK = {"high": 0, "medium": 1, "low": 2}


@functools.cache
def _by_text(cls: type[_L]) -> Mapping[str, _L]:
    """The member of ``cls`` each accepted text names (its value or its initial), the first
    member in definition order where two would match: what a walk over the members gave."""
    found: dict[str, _L] = {}
    for member in cls:
        found.setdefault(member.value, member)
        found.setdefault(member.value[0], member)
    return MappingProxyType(found)


class Impact(_Level):
    """How widely a problem affects the business."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Urgency(_Level):
    """How quickly the business needs it fixed."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Priority(enum.IntEnum):
    """Ticket priority; P1 is the most urgent."""

    P1 = 1
    P2 = 2
    P3 = 3
    P4 = 4
    P5 = 5

    @property
    def label(self) -> str:
        """The ITIL name of the priority (critical, high, moderate, low, planning)."""
        return _LABELS[self.value]

    def raised(self, steps: int = 1) -> Priority:
        """A priority ``steps`` levels more urgent, capped at P1."""
        return Priority(max(1, self.value - steps))

    def lowered(self, steps: int = 1) -> Priority:
        """A priority ``steps`` levels less urgent, capped at P5."""
        return Priority(min(5, self.value + steps))

    @classmethod
    def coerce(cls, value: object) -> Priority:
        """Accept a member, an int 1-5, ``"P2"``, ``"2"`` or a label such as ``"critical"``."""
        if isinstance(value, Priority):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
            return Priority(value)
        if isinstance(value, str):
            text = value.strip().lower().removeprefix("p")
            if text.isascii() and text.isdigit() and 1 <= int(text) <= 5:
                return Priority(int(text))
            for number, label in _LABELS.items():
                if value.strip().lower() == label:
                    return Priority(number)
        raise ValidationError(f"priority must be P1..P5 (or 1..5); got {value!r}")


_LABELS = {1: "critical", 2: "high", 3: "moderate", 4: "low", 5: "planning"}

Cell = tuple[Impact, Urgency]


def _freeze_cells(cells: Mapping[Cell, Priority]) -> Mapping[Cell, Priority]:
    return MappingProxyType(dict(cells))


@attrs.frozen
class PriorityMatrix:
    """Maps (impact, urgency) to a priority.

    Every one of the nine cells must be present, and the matrix must be monotone: a higher
    impact or a higher urgency never gives a less urgent priority. A bad matrix is refused here,
    when it is built.
    """

    cells: Mapping[Cell, Priority] = attrs.field(converter=_freeze_cells)

    def __attrs_post_init__(self) -> None:
        missing = [
            f"{i.value}/{u.value}" for i in Impact for u in Urgency if (i, u) not in self.cells
        ]
        if missing:
            raise ValidationError(f"priority matrix misses cells: {', '.join(missing)}")
        for (impact, urgency), priority in self.cells.items():
            if not isinstance(impact, Impact) or not isinstance(urgency, Urgency):
                raise ValidationError(f"bad matrix cell key {(impact, urgency)!r}")
            if not isinstance(priority, Priority):
                raise ValidationError(
                    f"matrix cell {impact.value}/{urgency.value} is not a Priority"
                )
        for impact in Impact:
            for urgency in Urgency:
                here = self.cells[(impact, urgency)]
                for other_impact in Impact:
                    for other_urgency in Urgency:
                        dominates = (
                            other_impact.rank <= impact.rank and other_urgency.rank <= urgency.rank
                        )
                        if dominates and self.cells[(other_impact, other_urgency)] > here:
                            raise ValidationError(
                                "priority matrix is not monotone: "
                                f"{other_impact.value}/{other_urgency.value} gives "
                                f"{self.cells[(other_impact, other_urgency)].name} but "
                                f"{impact.value}/{urgency.value} gives {here.name}"
                            )

    def __hash__(self) -> int:
        return hash(tuple(sorted((i.value, u.value, p.value) for (i, u), p in self.cells.items())))

    def priority(self, impact: Impact | str, urgency: Urgency | str) -> Priority:
        """The priority of a ticket with this impact and urgency."""
        return self.cells[(Impact.coerce(impact), Urgency.coerce(urgency))]

    @classmethod
    def itil(cls) -> PriorityMatrix:
        """The ITIL default (impact/urgency): H/H=P1, H/M=P2, H/L=P3, M/H=P2, M/M=P3, M/L=P4,
        L/H=P3, L/M=P4, L/L=P5."""
        return ITIL_MATRIX

    @classmethod
    def from_rows(cls, rows: Mapping[str, Mapping[str, object]]) -> PriorityMatrix:
        """Build from ``{"high": {"high": 1, "medium": 2, ...}, ...}`` (impact -> urgency -> P)."""
        cells: dict[Cell, Priority] = {}
        for impact_key, row in rows.items():
            impact = Impact.coerce(impact_key)
            if not isinstance(row, Mapping):
                raise ValidationError(f"matrix row {impact_key!r} must be a table of urgencies")
            for urgency_key, value in row.items():
                cells[(impact, Urgency.coerce(urgency_key))] = Priority.coerce(value)
        return cls(cells)

    def to_rows(self) -> dict[str, dict[str, int]]:
        """The inverse of :meth:`from_rows`."""
        return {i.value: {u.value: int(self.cells[(i, u)]) for u in Urgency} for i in Impact}


ITIL_MATRIX = PriorityMatrix(
    {
        (Impact.HIGH, Urgency.HIGH): Priority.P1,
        (Impact.HIGH, Urgency.MEDIUM): Priority.P2,
        (Impact.HIGH, Urgency.LOW): Priority.P3,
        (Impact.MEDIUM, Urgency.HIGH): Priority.P2,
        (Impact.MEDIUM, Urgency.MEDIUM): Priority.P3,
        (Impact.MEDIUM, Urgency.LOW): Priority.P4,
        (Impact.LOW, Urgency.HIGH): Priority.P3,
        (Impact.LOW, Urgency.MEDIUM): Priority.P4,
        (Impact.LOW, Urgency.LOW): Priority.P5,
    }
)
