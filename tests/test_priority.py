"""The priority matrix: the ITIL table, coercions, and validation of custom matrices."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpkit.errors import ValidationError
from helpkit.priority import ITIL_MATRIX, Impact, Priority, PriorityMatrix, Urgency
from helpkit.testing.strategies import priority_matrices

CELLS = [(i, u) for i in Impact for u in Urgency]
SEVERITY = {"high": 0, "medium": 1, "low": 2}


@pytest.mark.parametrize(
    ("impact", "urgency", "expected"),
    [
        ("high", "high", Priority.P1),
        ("high", "medium", Priority.P2),
        ("high", "low", Priority.P3),
        ("medium", "high", Priority.P2),
        ("medium", "medium", Priority.P3),
        ("medium", "low", Priority.P4),
        ("low", "high", Priority.P3),
        ("low", "medium", Priority.P4),
        ("low", "low", Priority.P5),
    ],
)
def test_itil_table(impact: str, urgency: str, expected: Priority) -> None:
    assert PriorityMatrix.itil().priority(impact, urgency) is expected
    assert ITIL_MATRIX.priority(Impact(impact), Urgency(urgency)) is expected


def test_labels() -> None:
    assert [p.label for p in Priority] == ["critical", "high", "moderate", "low", "planning"]


@pytest.mark.parametrize("text", ["high", "HIGH", " High ", "h", "H", Impact.HIGH])
def test_impact_coerce_accepts(text: object) -> None:
    assert Impact.coerce(text) is Impact.HIGH
    if not isinstance(text, Impact):
        assert Urgency.coerce(text) is Urgency.HIGH


@pytest.mark.parametrize("bad", ["", "hi", "x", "critical", 1, None, Urgency.HIGH])
def test_impact_coerce_refuses(bad: object) -> None:
    with pytest.raises(ValidationError, match="impact must be one of"):
        Impact.coerce(bad)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Priority.P2, Priority.P2),
        (1, Priority.P1),
        (5, Priority.P5),
        ("P3", Priority.P3),
        ("p4", Priority.P4),
        (" 2 ", Priority.P2),
        ("critical", Priority.P1),
        ("Planning", Priority.P5),
        ("moderate", Priority.P3),
    ],
)
def test_priority_coerce(value: object, expected: Priority) -> None:
    assert Priority.coerce(value) is expected


@pytest.mark.parametrize("bad", [0, 6, -1, True, 2.0, "P0", "P6", "urgent", "", "P", None, "²"])
def test_priority_coerce_refuses_with_validation_error(bad: object) -> None:
    # "²" is a digit to str.isdigit but not to int(): it used to escape as a bare ValueError.
    with pytest.raises(ValidationError, match="priority must be"):
        Priority.coerce(bad)


@given(st.sampled_from(Priority), st.integers(min_value=0, max_value=10))
def test_raised_and_lowered_are_capped(priority: Priority, steps: int) -> None:
    assert priority.raised(steps) is Priority(max(1, priority - steps))
    assert priority.lowered(steps) is Priority(min(5, priority + steps))


def test_raised_lowered_worked() -> None:
    assert Priority.P3.raised() is Priority.P2
    assert Priority.P1.raised() is Priority.P1
    assert Priority.P3.lowered(2) is Priority.P5
    assert Priority.P5.lowered() is Priority.P5


def _independent_is_valid(cells: dict[tuple[Impact, Urgency], Priority]) -> bool:
    """Complete, and no more-severe cell (in both axes) gets a less urgent priority."""
    if set(cells) != set(CELLS):
        return False
    for (i1, u1), (i2, u2) in itertools.product(cells, repeat=2):
        at_least_as_severe = (
            SEVERITY[i1.value] <= SEVERITY[i2.value] and SEVERITY[u1.value] <= SEVERITY[u2.value]
        )
        if at_least_as_severe and cells[(i1, u1)].value > cells[(i2, u2)].value:
            return False
    return True


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(CELLS), st.sampled_from(Priority), min_size=7, max_size=9))
def test_matrix_accepted_iff_complete_and_monotone(
    cells: dict[tuple[Impact, Urgency], Priority],
) -> None:
    if _independent_is_valid(cells):
        matrix = PriorityMatrix(cells)
        for cell, priority in cells.items():
            assert matrix.priority(*cell) is priority
    else:
        with pytest.raises(ValidationError):
            PriorityMatrix(cells)


@given(st.lists(st.integers(1, 5).map(Priority), min_size=9, max_size=9).map(sorted))
def test_sorted_assignments_are_monotone_and_accepted(values: list[Priority]) -> None:
    # Filling cells from most to least severe with non-decreasing numbers is always monotone:
    # guarantees the property above sees plenty of valid matrices too.
    cells = dict(zip(CELLS, values, strict=True))
    assert _independent_is_valid(cells)
    assert PriorityMatrix(cells).cells == cells


@given(priority_matrices())
def test_rows_round_trip(matrix: PriorityMatrix) -> None:
    rows = matrix.to_rows()
    assert PriorityMatrix.from_rows(rows) == matrix
    assert hash(PriorityMatrix.from_rows(rows)) == hash(matrix)
    assert set(rows) == {"high", "medium", "low"}


def test_from_rows_accepts_labels_and_initials() -> None:
    rows: dict[str, dict[str, object]] = {
        "H": {"h": "P1", "m": "P2", "l": "P3"},
        "medium": {"high": 2, "medium": "moderate", "low": 4},
        "Low": {"HIGH": "3", "Medium": 4, "low": "planning"},
    }
    assert PriorityMatrix.from_rows(rows) == ITIL_MATRIX


def test_refusal_happens_at_construction() -> None:
    rows = ITIL_MATRIX.to_rows()
    rows["low"]["low"] = 1  # low/low more urgent than high/high's neighbours: not monotone
    with pytest.raises(ValidationError, match="not monotone"):
        PriorityMatrix.from_rows(rows)


def test_missing_cell_named() -> None:
    rows = ITIL_MATRIX.to_rows()
    del rows["medium"]["low"]
    with pytest.raises(ValidationError, match="medium/low"):
        PriorityMatrix.from_rows(rows)


@pytest.mark.parametrize(
    "rows",
    [
        {"high": "P1"},  # row is not a table
        {"severe": {"high": 1}},
        {"high": {"high": 9}},
    ],
)
def test_from_rows_refuses_garbage(rows: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        PriorityMatrix.from_rows(rows)  # type: ignore[arg-type]


def test_cells_must_be_priorities() -> None:
    cells: dict[tuple[Impact, Urgency], object] = dict.fromkeys(CELLS, 3)
    with pytest.raises(ValidationError, match="not a Priority"):
        PriorityMatrix(cells)  # type: ignore[arg-type]


def test_matrix_is_immutable_and_detached_from_input() -> None:
    cells = dict(ITIL_MATRIX.cells)
    matrix = PriorityMatrix(cells)
    cells[(Impact.LOW, Urgency.LOW)] = Priority.P1
    assert matrix.priority("low", "low") is Priority.P5
    with pytest.raises(TypeError):
        matrix.cells[(Impact.LOW, Urgency.LOW)] = Priority.P1  # type: ignore[index]


def _coerce_by_walking(cls: type[Impact] | type[Urgency], value: object) -> object:
    """The reference coercion: walk the members in order, as coerce did before its table."""
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        for member in cls:
            if text in (member.value, member.value[0]):
                return member
    return ValidationError


_LEVEL_TEXTS = st.sampled_from(["high", "medium", "low", "h", "m", "l", "", "hi", "x"])


@settings(max_examples=400)
@given(
    cls=st.sampled_from([Impact, Urgency]),
    value=st.one_of(
        st.builds(
            lambda pad, text, upper: pad + (text.upper() if upper else text) + pad,
            st.sampled_from(["", " ", "\t", " \n"]),
            _LEVEL_TEXTS,
            st.booleans(),
        ),
        st.text(max_size=8),
        st.sampled_from([*Impact, *Urgency, None, 1, b"high"]),
    ),
)
def test_coerce_by_table_is_coerce_by_walking_the_members(
    cls: type[Impact] | type[Urgency], value: object
) -> None:
    expected = _coerce_by_walking(cls, value)
    if expected is ValidationError:
        with pytest.raises(ValidationError):
            cls.coerce(value)
    else:
        assert cls.coerce(value) is expected
