"""helpkit: an embeddable helpdesk core.

Tickets and their conversation, a priority matrix (impact x urgency), business-hours SLA
math, escalation tiers, an audit trail, and storage/channel plugins (pluggy).
"""

from __future__ import annotations

import logging

from helpkit.calendar import BusinessCalendar
from helpkit.config import DeskConfig
from helpkit.conflicts import retry_on_conflict
from helpkit.desk import UNSET, Helpdesk
from helpkit.errors import (
    AccessDeniedError,
    CalendarError,
    ConfigError,
    ConflictError,
    DeliveryRefusedError,
    DuplicateError,
    HelpkitError,
    InvalidTransitionError,
    MergeError,
    NaiveDatetimeError,
    NotFoundError,
    PluginError,
    ReadOnlyTicketError,
    SchemaError,
    StoreError,
    UnknownBackendError,
    ValidationError,
)
from helpkit.escalation import EscalationRules, Tier, TierLadder
from helpkit.fields import CustomField, FieldKind
from helpkit.hookspecs import hookimpl
from helpkit.people import Agent, Contact, Group, Organization
from helpkit.plugins import list_plugins
from helpkit.ports import Channel, Clock, DeskContext, OutboundMessage, Store
from helpkit.priority import Impact, Priority, PriorityMatrix, Urgency
from helpkit.queries import Page, SortOrder, TicketQuery
from helpkit.sla import Metric, SlaPolicy, SlaPolicySet, Targets
from helpkit.sweep import SweepReport
from helpkit.tickets import (
    Actor,
    Attachment,
    Comment,
    LinkKind,
    Status,
    StatusCategory,
    Ticket,
    Workflow,
)

__version__ = "0.1.0.dev0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "UNSET",
    "AccessDeniedError",
    "Actor",
    "Agent",
    "Attachment",
    "BusinessCalendar",
    "CalendarError",
    "Channel",
    "Clock",
    "Comment",
    "ConfigError",
    "ConflictError",
    "Contact",
    "CustomField",
    "DeliveryRefusedError",
    "DeskConfig",
    "DeskContext",
    "DuplicateError",
    "EscalationRules",
    "FieldKind",
    "Group",
    "Helpdesk",
    "HelpkitError",
    "Impact",
    "InvalidTransitionError",
    "LinkKind",
    "MergeError",
    "Metric",
    "NaiveDatetimeError",
    "NotFoundError",
    "Organization",
    "OutboundMessage",
    "Page",
    "PluginError",
    "Priority",
    "PriorityMatrix",
    "ReadOnlyTicketError",
    "SchemaError",
    "SlaPolicy",
    "SlaPolicySet",
    "SortOrder",
    "Status",
    "StatusCategory",
    "Store",
    "StoreError",
    "SweepReport",
    "Targets",
    "Ticket",
    "TicketQuery",
    "Tier",
    "TierLadder",
    "UnknownBackendError",
    "Urgency",
    "ValidationError",
    "Workflow",
    "__version__",
    "hookimpl",
    "list_plugins",
    "retry_on_conflict",
]
