"""Statuses, their fixed categories, and the transitions a workflow allows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpkit.errors import InvalidTransitionError, ValidationError
from helpkit.tickets import DEFAULT_WORKFLOW, Status, StatusCategory, Workflow

C = StatusCategory

# A second status in every category, so same-category moves between names are exercised.
RICH = Workflow(
    (
        Status("new", C.NEW),
        Status("triage", C.NEW),
        Status("open", C.OPEN),
        Status("in_progress", C.OPEN),
        Status("pending", C.PENDING),
        Status("awaiting_customer", C.PENDING),
        Status("on_hold", C.ON_HOLD),
        Status("vendor", C.ON_HOLD),
        Status("solved", C.SOLVED),
        Status("fixed", C.SOLVED),
        Status("closed", C.CLOSED),
        Status("merged", C.CLOSED),
        Status("archived", C.CLOSED),
    )
)


def expected_allowed(workflow: Workflow, current: Status, target: Status) -> bool:
    """The rules of docs/helpdesk.md, written independently of the implementation's table."""
    if target.name == workflow.merged_status:
        return False  # merged only via merge
    if current.category is C.CLOSED:
        return False  # closed is final
    if target.category is C.NEW:
        return False  # nothing returns to new
    if current.category is C.SOLVED:
        return target.category in (C.OPEN, C.CLOSED)
    return True


def test_default_workflow() -> None:
    names = [s.name for s in DEFAULT_WORKFLOW.statuses]
    assert names == ["new", "open", "pending", "on_hold", "solved", "closed", "merged"]
    assert DEFAULT_WORKFLOW.merged_status == "merged"
    for category in C:
        assert DEFAULT_WORKFLOW.default(category).name == category.value
    assert DEFAULT_WORKFLOW.in_category(C.CLOSED) == (
        Status("closed", C.CLOSED),
        Status("merged", C.CLOSED),
    )


def test_category_is_active() -> None:
    assert [c for c in C if c.is_active] == [C.NEW, C.OPEN, C.PENDING, C.ON_HOLD]


def test_unknown_status_names_the_known_ones() -> None:
    with pytest.raises(ValidationError, match=r"unknown status 'reopened'.*new, open"):
        DEFAULT_WORKFLOW.status("reopened")


@given(st.sampled_from(RICH.statuses), st.sampled_from(RICH.statuses))
def test_transition_table(current: Status, target: Status) -> None:
    if expected_allowed(RICH, current, target):
        RICH.check_transition(current, target)
    else:
        with pytest.raises(InvalidTransitionError):
            RICH.check_transition(current, target)


def test_transition_table_exhaustively_on_default() -> None:
    allowed = {
        (a.name, b.name)
        for a in DEFAULT_WORKFLOW.statuses
        for b in DEFAULT_WORKFLOW.statuses
        if expected_allowed(DEFAULT_WORKFLOW, a, b)
    }
    for a in DEFAULT_WORKFLOW.statuses:
        for b in DEFAULT_WORKFLOW.statuses:
            try:
                DEFAULT_WORKFLOW.check_transition(a, b)
            except InvalidTransitionError:
                assert (a.name, b.name) not in allowed
            else:
                assert (a.name, b.name) in allowed
    # A few worked rows, spelled out.
    assert ("solved", "open") in allowed
    assert ("solved", "pending") not in allowed
    assert ("pending", "solved") in allowed
    assert ("open", "new") not in allowed
    assert ("closed", "open") not in allowed
    assert ("open", "merged") not in allowed


def test_merge_refusal_says_use_merge() -> None:
    with pytest.raises(InvalidTransitionError, match="use merge"):
        DEFAULT_WORKFLOW.check_transition(
            DEFAULT_WORKFLOW.status("open"), DEFAULT_WORKFLOW.status("merged")
        )


def _statuses(without: StatusCategory | None = None) -> list[Status]:
    return [s for s in DEFAULT_WORKFLOW.statuses if s.category is not without]


@pytest.mark.parametrize("missing", list(C))
def test_custom_workflow_needs_every_category(missing: StatusCategory) -> None:
    with pytest.raises(ValidationError, match=missing.value):
        Workflow(_statuses(without=missing))


def test_custom_workflow_validation() -> None:
    with pytest.raises(ValidationError, match="defined twice"):
        Workflow([*_statuses(), Status("open", C.PENDING)])
    with pytest.raises(ValidationError, match="merged status 'gone'"):
        Workflow(_statuses(), merged_status="gone")
    with pytest.raises(ValidationError, match="closed-category"):
        Workflow(_statuses(), merged_status="solved")
    # The merged status may not be the default closed status, or closing would merge.
    reordered = [s for s in _statuses() if s.name != "closed"] + [Status("closed", C.CLOSED)]
    with pytest.raises(ValidationError, match="default"):
        Workflow(reordered)


def test_custom_workflow_with_other_merged_name() -> None:
    wf = Workflow(
        [*_statuses(without=C.CLOSED), Status("done", C.CLOSED), Status("dup", C.CLOSED)],
        merged_status="dup",
    )
    assert wf.default(C.CLOSED).name == "done"
    with pytest.raises(InvalidTransitionError):
        wf.check_transition(wf.status("open"), wf.status("dup"))
    wf.check_transition(wf.status("open"), wf.status("done"))


@pytest.mark.parametrize("bad", ["", " open", "on hold", "open\n"])
def test_status_names_are_single_words(bad: str) -> None:
    with pytest.raises(ValidationError, match="status name"):
        Status(bad, C.OPEN)


def test_status_category_from_text() -> None:
    assert Status("waiting", "pending").category is C.PENDING
    with pytest.raises(ValueError, match="paused"):
        Status("waiting", "paused")
