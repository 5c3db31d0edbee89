"""The ``helpkit`` argument parser: global options, one sub-parser per command, ticket filters."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import NoReturn

from helpkit import __version__
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
    cmd_queue,
    cmd_rate,
    cmd_reply,
    cmd_resolve,
    cmd_route,
    cmd_show,
    cmd_status,
    cmd_sweep,
    cmd_transfer,
)
from helpkit.cli._config import CONFIG_FILE
from helpkit.cli._deliver import cmd_deliver
from helpkit.cli._errors import EXIT_USAGE
from helpkit.cli._kb import add_kb_commands
from helpkit.cli._mail import add_mail_command
from helpkit.cli._numbers import int_range
from helpkit.cli._privacy import add_privacy_commands
from helpkit.cli._publish import add_publish_command
from helpkit.cli._report import add_report_command
from helpkit.cli._staff import (
    cmd_agents_activate,
    cmd_agents_add,
    cmd_agents_deactivate,
    cmd_agents_list,
    cmd_groups_add,
    cmd_groups_list,
)
from helpkit.priority import Impact, Urgency
from helpkit.queries import MAX_LIMIT, SortOrder
from helpkit.tickets import StatusCategory

DEFAULT_STORE = "sqlite:///helpkit.db"
MAX_DEMO_TICKETS = 100_000


class _Parser(argparse.ArgumentParser):
    """Reports a mistake on one line, ``helpkit: error: ...``, and exits with status 2."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("helpkit").strip()
        where = f"{command}: " if command else ""
        hint = f"helpkit {command} --help" if command else "helpkit --help"
        self.exit(EXIT_USAGE, f"helpkit: error: {where}{message} (see '{hint}')\n")


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
        help="only tickets due within DURATION (e.g. 1h, 30m), breached ones included; "
        "a negative one (-1h) keeps those breached for longer than that",
    )
    parser.add_argument(
        "--breached",
        action="store_true",
        help="only tickets with an SLA clock past its target (next deadline passed)",
    )
    parser.add_argument(
        "--overdue",
        action="store_true",
        help="only tickets with an SLA warning or breach due that no sweep has recorded yet",
    )
    _add_paging(parser)


def _add_paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit", type=int_range(1, MAX_LIMIT), default=50, help="page size (default 50)"
    )
    parser.add_argument("--after", metavar="CURSOR", help="cursor printed by the previous page")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="helpkit", description="An embeddable helpdesk core.")
    parser.add_argument("--version", action="version", version=f"helpkit {__version__}")
    parser.add_argument(
        "--store",
        default=os.environ.get("HELPKIT_STORE", DEFAULT_STORE),
        help="store URL (default: $HELPKIT_STORE or %(default)s)",
    )
    parser.add_argument(
        "--config",
        help=f"configuration file (default: $HELPKIT_CONFIG, ./{CONFIG_FILE} if present, "
        "else the per-user one if present)",
    )
    parser.add_argument(
        "--as",
        dest="actor_text",
        help="who acts: agent:ID, contact:ID or system:NAME (default: $HELPKIT_ACTOR, else "
        "system:cli; 'open' without either: the requester)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log more (-v info, -vv debug; an unexpected error's traceback)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="log errors only")
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
    p.add_argument(
        "--tickets",
        type=int_range(1, MAX_DEMO_TICKETS),
        default=300,
        help="tickets to create (default 300)",
    )
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument(
        "--force", action="store_true", help="add to a store that has tickets (a former demo's)"
    )
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
    p = command(
        "queue",
        cmd_queue,
        "an agent's (or a group's) unsolved tickets, most urgent first",
        json_flag=True,
    )
    p.add_argument("--agent", help="agent id (default: the agent of --as)")
    p.add_argument("--group", help="group id")
    _add_paging(p)
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
    p = command(
        "route",
        cmd_route,
        "route the tickets waiting in routed groups: shifts that started, agents back (cron)",
        json_flag=True,
    )
    p.add_argument("--group", help="only this routed group (default: every routed group)")
    p.add_argument(
        "--limit", type=int_range(1, 100_000), default=100, help="at most this many (100)"
    )
    p = command("escalate", cmd_escalate, "escalate a ticket one tier up (or down)", json_flag=True)
    p.add_argument("ticket")
    p.add_argument("--group", help="target group (default: the tier's first group)")
    p.add_argument("--functional", action="store_true", help="another group of the same tier")
    p.add_argument("--down", action="store_true", help="de-escalate one tier down")
    p.add_argument("--reason")
    p = command(
        "rate",
        cmd_rate,
        "record a satisfaction rating given through a survey's rating link (its token)",
        json_flag=True,
    )
    p.add_argument("token", help="the rating token (or the helpkit-rate:TOKEN link)")
    p.add_argument("rating", choices=["good", "bad"])
    p.add_argument("--comment", help="the rater's comment")
    p = command("contacts", cmd_contacts, "find or add contacts", json_flag=True)
    p.add_argument("search", nargs="?", help="name to search (case/accent-insensitive)")
    p.add_argument("--email", action="append", help="find by email (or the email of --add)")
    p.add_argument("--add", metavar="NAME", help="create a contact with this name")
    p.add_argument("--phone")
    p.add_argument("--language")
    p.add_argument("--org", help="organization id for --add (default: by email domain)")
    p.add_argument("--vip", action="store_true")
    p.add_argument("--tickets", action="store_true", help="also list each contact's tickets")
    p.add_argument("--limit", type=int_range(1, MAX_LIMIT), default=50)
    p = command("orgs", cmd_orgs, "find or add organizations", json_flag=True)
    p.add_argument("search", nargs="?", help="name to search (case/accent-insensitive)")
    p.add_argument("--domain", action="append", help="find by domain (or the domains of --add)")
    p.add_argument("--add", metavar="NAME", help="create an organization with this name")
    p.add_argument("--segment")
    p.add_argument("--region")
    p.add_argument("--tickets", action="store_true", help="also list each organization's tickets")
    p.add_argument("--limit", type=int_range(1, MAX_LIMIT), default=50)
    _staff_commands(command)
    add_kb_commands(command)
    add_publish_command(command)
    add_report_command(command)
    add_privacy_commands(command)
    _deliver_command(command)
    add_mail_command(command)
    p = command("plugins", cmd_plugins, "list plugins and what they register", json_flag=True)
    return parser


def _staff_commands(
    command: Callable[..., argparse.ArgumentParser],
) -> None:
    agents = command("agents", cmd_agents_list, "list, add, deactivate or activate agents")
    actions = agents.add_subparsers(dest="action", metavar="ACTION")
    p = actions.add_parser("list", help="the agents (the default)", description="the agents")
    p.set_defaults(handler=cmd_agents_list)
    p.add_argument("--json", action="store_true", help="print JSON")
    p = actions.add_parser("add", help="add (or replace) an agent", description="add an agent")
    p.set_defaults(handler=cmd_agents_add)
    p.add_argument("id", help="agent id (what --as agent:ID and --assignee name)")
    p.add_argument("name")
    p.add_argument("--email")
    p.add_argument("--group", action="append", help="group id (repeatable; it must exist)")
    p.add_argument(
        "--role",
        default="agent",
        help="admin, agent (the default), light_agent or a role of [roles.NAME]",
    )
    p.add_argument(
        "--restricted",
        action="store_true",
        help="the agent acts only on the tickets of their groups",
    )
    for name, handler, text in (
        ("deactivate", cmd_agents_deactivate, "an agent who can no longer be assigned"),
        ("activate", cmd_agents_activate, "an agent who can be assigned again"),
    ):
        p = actions.add_parser(name, help=text, description=text)
        p.set_defaults(handler=handler)
        p.add_argument("id", help="agent id")
    groups = command("groups", cmd_groups_list, "list or add groups")
    actions = groups.add_subparsers(dest="action", metavar="ACTION")
    p = actions.add_parser("list", help="the groups (the default)", description="the groups")
    p.set_defaults(handler=cmd_groups_list)
    p.add_argument("--json", action="store_true", help="print JSON")
    p = actions.add_parser("add", help="add (or replace) a group", description="add a group")
    p.set_defaults(handler=cmd_groups_add)
    p.add_argument("id", help="group id")
    p.add_argument("name")
    p.add_argument("--tier", type=int_range(1, 9), help="escalation tier: 1 = L1 (service desk)")
    p.add_argument("--description")


def _seconds(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds; got {text!r}") from None
    if not 0.01 <= value <= 3600:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"must be between 0.01 and 3600 seconds; got {text}")
    return value


_seconds.__name__ = "seconds"  # argparse names the type in its messages


def _deliver_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command(
        "deliver",
        cmd_deliver,
        "send the messages waiting in the outbox (for cron), or keep sending them (--follow)",
        json_flag=True,
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--follow",
        action="store_true",
        help="keep delivering as commits come, until SIGTERM or Ctrl-C (a worker)",
    )
    mode.add_argument("--dead", action="store_true", help="list the dead letters (given up)")
    mode.add_argument(
        "--pending", action="store_true", help="list the deliveries waiting for an attempt"
    )
    mode.add_argument(
        "--retry",
        metavar="ID",
        action="append",
        help="send a dead delivery again, now (repeatable)",
    )
    p.add_argument(
        "--poll",
        type=_seconds,
        metavar="SECONDS",
        help="with --follow: how often to look for new commits (default 1)",
    )
    p.add_argument("--limit", type=int_range(1, MAX_LIMIT), default=50, help="page size of a list")
    p.add_argument("--after", metavar="ID", help="list the deliveries after this id")


def _value_options(parser: argparse.ArgumentParser) -> tuple[set[str], set[str]]:
    """Every option string of the parser and its sub-parsers, and those that take a value."""
    every: set[str] = set()
    valued: set[str] = set()
    pending = [parser]
    while pending:
        current = pending.pop()
        for action in current._actions:
            every.update(action.option_strings)
            if action.option_strings and action.nargs is None and action.const is None:
                valued.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                pending.extend(action.choices.values())
    return every, valued


def _dash_values(parser: argparse.ArgumentParser, argv: Sequence[str]) -> Iterator[str]:
    """``argv`` with ``--opt -value`` written ``--opt=-value`` when ``-value`` is no option.

    argparse takes a value that starts with "-" (``--sort -updated``, ``--breaching-within
    -1h``) for an option and refuses it; glued with "=" it is read as the value.
    """
    every, valued = _value_options(parser)
    tokens = list(argv)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "--":
            yield from tokens[index:]
            return
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if (
            token in valued
            and following is not None
            and following.startswith("-")
            and following not in ("-", "--")
            and following.split("=", 1)[0] not in every
        ):
            yield f"{token}={following}"
            index += 2
            continue
        yield token
        index += 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The parsed command line (argparse exits with status 2 on a mistake, 0 on --help)."""
    parser = _build_parser()
    return parser.parse_args(list(_dash_values(parser, sys.argv[1:] if argv is None else argv)))
