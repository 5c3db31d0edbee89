"""Deactivating and activating agents (``Helpdesk.deactivate_agent`` / ``activate_agent``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpkit import Actor, Helpdesk, NotFoundError, ValidationError


@pytest.fixture(params=["memory", "sqlite"])
def desk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Helpdesk]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'desk.db'}"
    with Helpdesk(url, entry_points=False) as desk:
        desk.add_group("l1", "Service desk", tier=1)
        desk.add_agent("ana", "Ana", email="ana@support.example", groups=["l1"])
        yield desk


def test_a_deactivated_agent_cannot_be_assigned_until_activated(desk: Helpdesk) -> None:
    ticket = desk.open_ticket(
        Actor.system("test"), requester="zoe@example.com", subject="Printer", assignee="ana"
    )
    agent = desk.deactivate_agent("ana")
    assert agent.active is False and desk.agent("ana") == agent
    assert agent.group_ids == ("l1",) and agent.email == "ana@support.example"
    assert desk.ticket(ticket).assignee_id == "ana"  # its tickets stay assigned
    before = desk.ticket(ticket)
    with pytest.raises(ValidationError, match="inactive"):
        desk.assign(ticket, Actor.system("test"), agent="ana", group="l1")
    with pytest.raises(ValidationError, match="inactive"):
        desk.open_ticket(
            Actor.system("test"), requester="zoe@example.com", subject="Again", assignee="ana"
        )
    assert desk.ticket(ticket) == before
    assert desk.activate_agent("ana").active is True
    assert desk.deactivate_agent("ana") == desk.deactivate_agent("ana")  # idempotent
    desk.activate_agent("ana")
    moved = desk.assign(ticket, Actor.system("test"), agent="ana", group="l1")
    assert moved.assignee_id == "ana"


def test_unknown_agents_are_not_found(desk: Helpdesk) -> None:
    with pytest.raises(NotFoundError):
        desk.deactivate_agent("ghost")
    with pytest.raises(NotFoundError):
        desk.activate_agent("ghost")
    with pytest.raises(ValidationError):
        desk.deactivate_agent(42)  # type: ignore[arg-type]
    assert [a.id for a in desk.agents()] == ["ana"]
