"""The ``helpkit`` argument parser: global options, one sub-parser per command, ticket filters."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from helpkit.cli._commands import (
    cmd_assign,
    cmd_close,
    cmd_contacts,
    cmd_demo,
    cmd_escalate,
    cmd_init,
    cmd_list,
    cmd_merge,
    cmd_note,
    cmd_open,
    cmd_orgs,
    cmd_plugins,
    cmd_reply,
    cmd_resolve,
    cmd_show,
    cmd_status,
    cmd_sweep,
    cmd_transfer,
)
from helpkit.cli._config import CONFIG_FILE
from helpkit.priority import Impact, Urgency
from helpkit.queries import SortOrder
from helpkit.tickets import StatusCategory

DEFAULT_STORE = "sqlite:///helpkit.db"


def _add_ticket_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", action="append", help="status name (repeatable)")
    parser.add_argument(
        "--category",
        action="append",
        choices=[c.value for c in StatusCategory],
        help="status category (repeatable)",
    )
    parser.add_argument("--assignee", action="append", help="agent id (repeatable)")
    parser.add_argument("--unassigned", action="store_true", help="only tickets without assignee")
    parser.add_argument("--group", action="append", help="group id (repeatable)")
    parser.add_argument("--requester", action="append", help="contact id or email (repeatable)")
    parser.add_argument("--org", action="append", help="organization id (repeatable)")
    parser.add_argument("--priority", action="append", help="P1..P5 (repeatable)")
    parser.add_argument("--tag", action="append", help="required tag (repeatable)")
    parser.add_argument(
        "--sort", default="priority", choices=[s.value for s in SortOrder], help="order"
    )
    parser.add_argument(
        "--breaching-within",
        metavar="DURATION",
        help="only tickets due within DURATION (e.g. 1h, 30m), breached ones included",
    )
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--after", help="cursor printed by the previous page")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="helpkit", description="An embeddable helpdesk core.")
    parser.add_argument(
        "--store",
        default=os.environ.get("HELPKIT_STORE", DEFAULT_STORE),
        help="store URL (default: $HELPKIT_STORE or %(default)s)",
    )
    parser.add_argument(
        "--config", help=f"configuration file (default: ./{CONFIG_FILE} if present)"
    )
    parser.add_argument(
        "--as",
        dest="actor_text",
        default=os.environ.get("HELPKIT_ACTOR", "system:cli"),
        help="who acts: agent:ID, contact:ID or system:NAME "
        "(default: $HELPKIT_ACTOR or %(default)s)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, handler: Callable[..., int], help_text: str, *, json_flag: bool = False
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        if json_flag:
            p.add_argument("--json", action="store_true", help="print JSON")
        return p

    p = command("init", cmd_init, "create (or upgrade) the store")
    p.add_argument("--write-config", action="store_true", help=f"also write a ./{CONFIG_FILE}")
    p = command(
        "demo", cmd_demo, "fill a realistic helpdesk and show the agents' queue", json_flag=True
    )
    p.add_argument("--tickets", type=int, default=300, help="tickets to create (default 300)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--force", action="store_true", help="add to a store that has tickets")
    p = command("open", cmd_open, "open a ticket", json_flag=True)
    p.add_argument("--requester", required=True, help="contact id or email (new emails are added)")
    p.add_argument("--subject", required=True)
    p.add_argument("--body")
    p.add_argument("--impact", default="medium", choices=[i.value for i in Impact])
    p.add_argument("--urgency", default="medium", choices=[u.value for u in Urgency])
    p.add_argument("--channel", default="cli")
    p.add_argument("--tag", action="append")
    p.add_argument("--group")
    p.add_argument("--assignee")
    p = command("list", cmd_list, "list tickets", json_flag=True)
    _add_ticket_filters(p)
    p = command("show", cmd_show, "a ticket's details, conversation and history", json_flag=True)
    p.add_argument("ticket", help="number (42 or #42) or id")
    for name, handler, help_text in (
        ("reply", cmd_reply, "public reply (sent to the requester)"),
        ("note", cmd_note, "internal note (agents only)"),
    ):
        p = command(name, handler, help_text, json_flag=True)
        p.add_argument("ticket")
        p.add_argument("body")
        if name == "reply":
            p.add_argument("--status", help="status to set with the reply (e.g. pending)")
    p = command("assign", cmd_assign, "set the assignee and/or group ('-' clears)", json_flag=True)
    p.add_argument("ticket")
    p.add_argument("--agent")
    p.add_argument("--group")
    p = command("transfer", cmd_transfer, "hand a ticket to another group", json_flag=True)
    p.add_argument("ticket")
    p.add_argument("--group", required=True)
    p.add_argument("--agent")
    p.add_argument("--reason")
    p = command("status", cmd_status, "set a ticket's status", json_flag=True)
    p.add_argument("ticket")
    p.add_argument("status")
    p.add_argument("--reason")
    p = command("merge", cmd_merge, "merge SOURCE into TARGET", json_flag=True)
    p.add_argument("source")
    p.add_argument("target")
    p = command("resolve", cmd_resolve, "mark solved", json_flag=True)
    p.add_argument("ticket")
    p.add_argument("--comment", help="public closing comment")
    p = command("close", cmd_close, "close (read-only from then on)", json_flag=True)
    p.add_argument("ticket")
    p = command(
        "sweep",
        cmd_sweep,
        "record due SLA warnings/breaches, run escalation rules (cron)",
        json_flag=True,
    )
    p.add_argument("--now", help="sweep as of this ISO 8601 instant (default: now)")
    p = command("escalate", cmd_escalate, "escalate a ticket one tier up", json_flag=True)
    p.add_argument("ticket")
    p.add_argument("--group", help="target group (default: the tier's first group)")
    p.add_argument("--functional", action="store_true", help="another group of the same tier")
    p.add_argument("--down", action="store_true", help="de-escalate one tier down")
    p.add_argument("--reason")
    p = command("contacts", cmd_contacts, "find or add contacts", json_flag=True)
    p.add_argument("search", nargs="?", help="name to search (case/accent-insensitive)")
    p.add_argument("--email", action="append", help="find by email (or the email of --add)")
    p.add_argument("--add", metavar="NAME", help="create a contact with this name")
    p.add_argument("--phone")
    p.add_argument("--language")
    p.add_argument("--org", help="organization id for --add (default: by email domain)")
    p.add_argument("--vip", action="store_true")
    p.add_argument("--tickets", action="store_true", help="also list each contact's tickets")
    p.add_argument("--limit", type=int, default=50)
    p = command("orgs", cmd_orgs, "find or add organizations", json_flag=True)
    p.add_argument("search", nargs="?", help="name to search (case/accent-insensitive)")
    p.add_argument("--domain", action="append", help="find by domain (or the domains of --add)")
    p.add_argument("--add", metavar="NAME", help="create an organization with this name")
    p.add_argument("--segment")
    p.add_argument("--region")
    p.add_argument("--tickets", action="store_true", help="also list each organization's tickets")
    p.add_argument("--limit", type=int, default=50)
    p = command("plugins", cmd_plugins, "list plugins and what they register", json_flag=True)
    return parser
