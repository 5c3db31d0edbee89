"""Agent roles: what an agent may do, and on which tickets (pure: no I/O).

A :class:`Role` is a named set of :class:`Permission` s, optionally restricted to the tickets
of the agent's groups. Three roles are built in (:data:`BUILTIN_ROLES`): ``admin`` (every
permission, never restricted, not even an agent saved ``restricted``), ``agent`` (every
permission too: the default role, what an agent could do before roles existed) and
``light_agent`` (reads tickets and adds internal notes). A desk's configuration may add
roles or replace ``agent`` and ``light_agent`` (``[roles.NAME]``); :func:`allowed` is the one
decision the desk's access service asks.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs

from helpkit.errors import AccessDeniedError, ConfigError
from helpkit.people import Agent
from helpkit.tickets import Ticket

__all__ = [
    "ADMIN",
    "BUILTIN_ROLES",
    "DEFAULT_ROLE",
    "Permission",
    "Role",
    "allowed",
    "builtin_roles",
    "can_see",
    "restricted",
    "role_map",
    "roles_from_table",
]


class Permission(enum.Enum):
    """One thing an agent may do. Each facade command and agent query needs one."""

    READ = "read"
    """Read tickets: their state, whole conversation (internal notes included) and history."""
    NOTE = "note"
    """Add internal notes."""
    REPLY = "reply"
    """Send public replies."""
    OPEN = "open"
    """Open tickets for a contact."""
    EDIT = "edit"
    """Change status (solve, close, reopen), priority, subject, tags, custom fields, links
    and other people's following."""
    ASSIGN = "assign"
    """Assign, transfer, escalate and de-escalate."""
    MERGE = "merge"
    """Merge one ticket into another."""
    MACRO = "macro"
    """Apply (and preview) macros."""
    INBOX = "inbox"
    """Release or discard suspended inbound messages."""
    DELIVERIES = "deliveries"
    """Send dead deliveries again."""
    KNOWLEDGE = "knowledge"
    """Write the knowledge base: articles (create, edit, publish, archive, answers from
    tickets), categories, sections and links to tickets."""
    PRIVACY = "privacy"
    """Redact comments and erase contacts (see the page *Privacy*): only ``admin`` holds it
    among the built-in roles."""

    @classmethod
    def coerce(cls, value: Permission | str) -> Permission:
        """A member, or its name; ConfigError naming the known ones."""
        if isinstance(value, Permission):
            return value
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(p.value for p in cls)
            raise ConfigError(f"unknown permission {value!r:.40} (known: {known})") from None


def _permissions(values: Iterable[Permission | str]) -> frozenset[Permission]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ConfigError(f"permissions are a list of names; got {values!r:.60}")
    return frozenset(Permission.coerce(v) for v in values)


def _role_name(value: str) -> str:
    if not isinstance(value, str) or not value or not value.isidentifier():
        raise ConfigError(f"a role name is a word (letters, digits, _); got {value!r:.40}")
    return value


@attrs.frozen(kw_only=True)
class Role:
    """A named set of permissions. ``restricted``: its agents act only on the tickets of
    their own groups (as if every agent of the role had ``restricted=True``)."""

    name: str = attrs.field(converter=_role_name)
    permissions: frozenset[Permission] = attrs.field(converter=_permissions)
    restricted: bool = attrs.field(default=False)

    @restricted.validator
    def _flag(self, _: object, value: object) -> None:
        if not isinstance(value, bool):
            raise ConfigError(f"role {self.name}: restricted is true or false; got {value!r:.40}")

    def grants(self, permission: Permission) -> bool:
        """Whether the role holds ``permission``."""
        return permission in self.permissions


ADMIN: Final = "admin"
DEFAULT_ROLE: Final = "agent"
"""The role of an agent saved without one (every agent stored before roles existed)."""

BUILTIN_ROLES: Final[Mapping[str, Role]] = {
    ADMIN: Role(name=ADMIN, permissions=frozenset(Permission)),
    # Everything an agent could do before roles existed; privacy is new and an admin's.
    DEFAULT_ROLE: Role(name=DEFAULT_ROLE, permissions=frozenset(Permission) - {Permission.PRIVACY}),
    "light_agent": Role(
        name="light_agent", permissions=frozenset({Permission.READ, Permission.NOTE})
    ),
}

_ROLE_KEYS: Final = frozenset({"permissions", "restricted"})


def roles_from_table(data: Mapping[str, Any]) -> dict[str, Role]:
    """The ``[roles.NAME]`` tables (``permissions = [...]``, ``restricted = false``) over the
    built-in roles. ``admin`` cannot be redefined (it always holds every permission)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"[roles] is a table of roles; got {data!r:.60}")
    roles = dict(BUILTIN_ROLES)
    for name, table in data.items():
        where = f"roles.{name}"
        if name == ADMIN:
            raise ConfigError("[roles.admin] is built in (every permission) and cannot change")
        if not isinstance(table, Mapping):
            raise ConfigError(f"[{where}] is a table; got {table!r:.60}")
        unknown = sorted(set(map(str, table)) - _ROLE_KEYS)
        if unknown:
            raise ConfigError(
                f"unknown [{where}] keys: {', '.join(unknown)} (known: permissions, restricted)"
            )
        if "permissions" not in table:
            raise ConfigError(f"[{where}] needs permissions")
        roles[str(name)] = Role(
            name=str(name),
            permissions=table["permissions"],
            restricted=table.get("restricted", False),
        )
    return roles


def builtin_roles() -> dict[str, Role]:
    """A copy of :data:`BUILTIN_ROLES` (a desk's roles when none are configured)."""
    return dict(BUILTIN_ROLES)


def role_map(roles: Mapping[str, Role]) -> Mapping[str, Role]:
    """A desk's roles: ``roles`` (each under its own name) over the built-in ones, read-only.
    ``admin`` is always the built-in one."""
    if not isinstance(roles, Mapping):
        raise ConfigError(f"roles are a mapping of names to Role; got {roles!r:.60}")
    merged = dict(BUILTIN_ROLES)
    for name, role in roles.items():
        if not isinstance(role, Role) or role.name != name:
            raise ConfigError(f"roles[{name!r:.40}] must be a Role named {name!r:.40}")
        if name == ADMIN and role != BUILTIN_ROLES[ADMIN]:
            raise ConfigError("the admin role is built in (every permission) and cannot change")
        merged[name] = role
    return MappingProxyType(merged)


def restricted(agent: Agent, role: Role) -> bool:
    """Whether ``agent`` (of ``role``) acts only on their groups' tickets (never an admin)."""
    return role.name != ADMIN and (agent.restricted or role.restricted)


def can_see(agent: Agent, role: Role, ticket: Ticket) -> bool:
    """Whether ``agent`` (of ``role``) may read ``ticket``: active, holding ``read``, and,
    when restricted, a member of the ticket's group."""
    if not agent.active or not role.grants(Permission.READ):
        return False
    return not restricted(agent, role) or (
        ticket.group_id is not None and agent.in_group(ticket.group_id)
    )


def allowed(
    agent: Agent, role: Role, permission: Permission, tickets: Iterable[Ticket] = ()
) -> None:
    """Refuse (AccessDeniedError) unless ``agent`` is active, its ``role`` grants
    ``permission``, and every ticket of ``tickets`` is one it may act on: when restricted,
    the ticket belongs to one of the agent's groups (a ticket with no group belongs to
    none)."""
    if not agent.active:
        raise AccessDeniedError(f"agent {agent.id!r} is inactive")
    if not role.grants(permission):
        raise AccessDeniedError(
            f"agent {agent.id!r} (role {role.name}) lacks the permission {permission.value!r}"
        )
    if not restricted(agent, role):
        return
    for ticket in tickets:
        if ticket.group_id is None or not agent.in_group(ticket.group_id):
            raise AccessDeniedError(
                f"agent {agent.id!r} is restricted to their groups' tickets; ticket "
                f"{ticket.id} is in "
                + ("no group" if ticket.group_id is None else f"group {ticket.group_id!r}")
            )
