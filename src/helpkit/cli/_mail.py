"""``helpkit mail``: inbound email into the desk, three ways, and the suspended messages.

- ``mail ingest`` reads one message on standard input: what a mail server's pipe runs
  (``support: "|helpkit --store ... mail ingest"``). Its exit status speaks the mail
  server's language (``sysexits.h``): 0 ingested, suspended or a duplicate; 65
  (``EX_DATAERR``, the message bounces) bytes that are no usable message; 75
  (``EX_TEMPFAIL``, the mail server keeps the message and tries again) a temporary failure,
  such as a locked store, and anything unexpected; 78 (``EX_CONFIG``, also tried again) a
  configuration to fix: no store, a bad ``helpkit.toml``.
- ``mail import DIR`` ingests every message file of a Maildir or a folder of ``.eml`` files,
  ``--batch`` of them (default 100) in one group commit (:meth:`Helpdesk.group_commit`), each
  file moved or deleted only once its batch is committed.
- ``mail poll`` reads the new messages of an IMAP mailbox of the configuration (once, or
  ``--follow`` until SIGTERM or Ctrl-C), each fetched batch (the mailbox's ``batch``) in one
  group commit with the mailbox's cursor, each message flagged or moved once it is
  committed.
- ``mail suspended`` lists the messages the screens held back; ``mail release KEY`` ingests
  one anyway, ``mail discard KEY`` throws it away.

Each message prints one line: ``created #12``, ``commented #12``, ``suspended: <reason>``,
``duplicate (created #12)``, or ``unparseable: <why>``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable
from typing import Any, Final

import attrs

from helpkit import serialize
from helpkit.channels.email_in import EmailParseError, parse
from helpkit.channels.imap import ImapAccount, ImapError, ImapPoller, Polled, PollReport
from helpkit.channels.mail_folder import Imported, import_folder
from helpkit.channels.parsed_ids import ParsedIds, digest
from helpkit.cli._errors import EXIT_FAILURE, EXIT_OK, UsageError
from helpkit.cli._numbers import int_range
from helpkit.cli._output import _emit_json
from helpkit.cli._stopping import run_until_signalled
from helpkit.config import MailboxConfig
from helpkit.desk import Helpdesk
from helpkit.errors import (
    ConfigError,
    HelpkitError,
    PluginError,
    ValidationError,
)
from helpkit.intake import Intake, IntakeKind
from helpkit.ports import Receipt

EX_DATAERR: Final = 65
"""``mail ingest``: the input is no usable email (the mail server bounces it)."""
EX_TEMPFAIL: Final = 75
"""``mail ingest``: a temporary failure (the mail server tries again later)."""
EX_CONFIG: Final = 78
"""``mail ingest``: a configuration to fix (the mail server tries again later)."""

_DRAIN: Final = 1 << 16


@attrs.frozen
class Ingested:
    """What became of one message: the desk's :class:`~helpkit.intake.Intake`, or why the
    bytes could not be parsed."""

    intake: Intake | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the desk took it (ingested, suspended or a duplicate)."""
        return self.intake is not None

    def line(self) -> str:
        """``created #12``, ``commented #12``, ``suspended: <reason>``, ``duplicate (...)``,
        ``unparseable: <why>``."""
        if self.intake is None:
            return f"unparseable: {self.error}"
        return outcome_line(self.intake)

    def to_data(self) -> dict[str, Any]:
        """The JSON form: the intake's fields, or ``{"error": ...}``."""
        if self.intake is None:
            return {"kind": "unparseable", "error": self.error}
        data: dict[str, Any] = serialize.to_data(self.intake)
        return data


def outcome_line(intake: Intake) -> str:
    """What the command line prints for an :class:`~helpkit.intake.Intake`."""
    number = f"#{intake.ticket_number}" if intake.ticket_number is not None else "a ticket"
    if intake.kind is IntakeKind.CREATED:
        text = f"created {number}"
    elif intake.kind is IntakeKind.COMMENTED:
        text = f"commented {number}"
    elif intake.kind is IntakeKind.SUSPENDED:
        text = f"suspended: {intake.reason or 'no reason given'}"
    else:
        text = "discarded"
    return f"duplicate ({text})" if intake.duplicate else text


def receiver(desk: Helpdesk, channel: str = "email") -> Callable[[bytes], Ingested]:
    """The callback the transports hand each message to: parse it, let the desk receive it.
    Bytes that are no usable email give an :class:`Ingested` with the reason; every other
    failure (a locked store...) propagates and stops the transport."""

    # Bytes handed over again (a retried delivery, an overlapping poll, a folder imported
    # twice) are not parsed again: their id, kept by the bytes' digest, finds the first
    # outcome in the desk's inbox (parsed_ids.py says why that is the same answer).
    parsed = ParsedIds()

    def handle(raw: bytes) -> Ingested:
        key = digest(raw)
        known = parsed.get(key)
        if known is not None:
            again = desk.received(channel, known)
            if again is not None:
                return Ingested(again)
        try:
            message = parse(raw, channel=channel, received_at=desk.now())
        except EmailParseError as exc:
            return Ingested(None, str(exc).strip() or "not an email")
        parsed.add(key, message.external_id)
        return Ingested(desk.receive(message))

    return handle


def _finished(result: Ingested) -> bool:
    return result.ok


def _line(text: str) -> None:
    print(text)
    sys.stdout.flush()


def _json_line(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False))
    sys.stdout.flush()


# ------------------------------------------------------------------ the parser


def add_mail_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add ``mail`` and its actions to the parser (``command`` is the parser's factory)."""
    mail = command("mail", _mail_help, "inbound email: ingest, import, poll, suspended messages")
    actions = mail.add_subparsers(dest="action", metavar="ACTION")

    def action(name: str, handler: Callable[..., int], text: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=text, description=text)
        p.set_defaults(handler=handler)
        p.add_argument("--json", action="store_true", help="print JSON")
        return p

    p = action(
        "ingest",
        cmd_mail_ingest,
        "ingest one email read on standard input (a mail server's pipe); exit status 0 "
        "done, 65 unusable input, 75 try again later, 78 fix the configuration",
    )
    p.set_defaults(failure_status=ingest_status)
    p.add_argument("--channel", default="email", help="the channel it came through (email)")
    p = action(
        "import", cmd_mail_import, "ingest every message of a Maildir or a folder of .eml files"
    )
    p.add_argument("folder", help="a Maildir (new/ and cur/ are read) or a folder of .eml files")
    fate = p.add_mutually_exclusive_group()
    fate.add_argument(
        "--move", action="store_true", help="move each ingested new/ message to cur/ (Maildir)"
    )
    fate.add_argument("--delete", action="store_true", help="delete each ingested file")
    p.add_argument(
        "--batch",
        type=int_range(1, 10_000),
        default=100,
        metavar="N",
        help="commit N messages together, each file moved or deleted once its batch is "
        "committed (default 100; 1: each message its own commit)",
    )
    p.add_argument("--channel", default="email", help="the channel they came through (email)")
    p = action("poll", cmd_mail_poll, "ingest the new messages of an IMAP mailbox of the config")
    p.add_argument(
        "name",
        nargs="?",
        help="which mailbox: NAME of [imap.NAME] (default: the only one, or [mailbox])",
    )
    p.add_argument(
        "--follow",
        action="store_true",
        help="keep polling every interval, until SIGTERM or Ctrl-C (a worker)",
    )
    p.add_argument(
        "--interval",
        type=_interval,
        metavar="SECONDS",
        help="with --follow: seconds between polls (default: the mailbox's interval)",
    )
    p.add_argument("--channel", default="email", help="the channel they came through (email)")
    p = action("suspended", cmd_mail_suspended, "the messages the screens held back")
    p.add_argument("--limit", type=int_range(1, 1000), default=50, help="page size (default 50)")
    p.add_argument("--after", metavar="KEY", help="the last key of the previous page")
    p = action("release", cmd_mail_release, "ingest a suspended message as if it passed")
    p.add_argument("key", help="its key (helpkit mail suspended lists them)")
    p = action("discard", cmd_mail_discard, "throw a suspended message away")
    p.add_argument("key", help="its key (helpkit mail suspended lists them)")


def _interval(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds; got {text!r}") from None
    if not 0.01 <= value <= 86400:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"must be between 0.01 and 86400 seconds; got {text}")
    return value


_interval.__name__ = "seconds"


def _mail_help(desk: Helpdesk, args: argparse.Namespace) -> int:
    raise UsageError("name an action: ingest, import, poll, suspended, release or discard")


def ingest_status(exc: BaseException) -> int:
    """``mail ingest``'s exit status for an error (see the module's description)."""
    if isinstance(exc, EmailParseError):
        return EX_DATAERR
    if isinstance(exc, ConfigError | UsageError | PluginError):
        return EX_CONFIG
    return EX_TEMPFAIL


# ------------------------------------------------------------------ ingest


def _read_stdin(limit: int) -> bytes:
    """Standard input's bytes, at most ``limit`` + 1 of them (the rest is read and dropped, so
    the writer is not cut off)."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        return b""
    data = stream.read(limit + 1)
    while stream.read(_DRAIN):
        pass
    return bytes(data)


def cmd_mail_ingest(desk: Helpdesk, args: argparse.Namespace) -> int:
    from helpkit.channels.email_in import MAX_BYTES

    raw = _read_stdin(MAX_BYTES)
    try:
        message = parse(raw, channel=args.channel, received_at=desk.now())
    except EmailParseError as exc:
        print(f"helpkit: error: not a usable email: {exc}", file=sys.stderr)
        return EX_DATAERR
    except ValidationError as exc:  # a channel name InboundMessage refuses
        raise UsageError(str(exc)) from exc
    result = Ingested(desk.receive(message))
    if args.json:
        _emit_json(result.to_data())
    else:
        print(result.line())
    return EXIT_OK


# ------------------------------------------------------------------ import


def cmd_mail_import(desk: Helpdesk, args: argparse.Namespace) -> int:
    after = "move" if args.move else "delete" if args.delete else "keep"
    failed = 0

    def each(imported: Imported[Ingested]) -> None:
        nonlocal failed
        failed += not imported.result.ok
        if args.json:
            _json_line(
                {"file": str(imported.path), "fate": imported.fate, **imported.result.to_data()}
            )
        else:
            _line(f"{imported.path}: {imported.result.line()}")

    report = import_folder(
        args.folder,
        receiver(desk, args.channel),
        after=after,
        finished=_finished,
        on_file=each,
        group=desk.group_commit,
        batch=args.batch,
    )
    if not args.json:
        what = "Maildir" if report.maildir else "folder"
        _line(
            f"import: {len(report.messages)} messages from {what} {report.folder}"
            + (f", {failed} unparseable (kept)" if failed else "")
        )
    return EXIT_FAILURE if failed else EXIT_OK


# ------------------------------------------------------------------ poll


def mailbox_config(desk: Helpdesk, name: str | None) -> MailboxConfig:
    """The mailbox ``name`` of the configuration (default: the only one, or ``[mailbox]``)."""
    mailboxes = desk.config.mailboxes
    if not mailboxes:
        raise UsageError(
            "no mailbox is configured: add a [mailbox] table to helpkit.toml (host, user, "
            "password_env...; see the Mailboxes docs)"
        )
    if name is None:
        if len(mailboxes) == 1:
            return next(iter(mailboxes.values()))
        if "default" in mailboxes:
            return mailboxes["default"]
        raise UsageError(f"name the mailbox to poll: {', '.join(sorted(mailboxes))}")
    if name not in mailboxes:
        raise UsageError(
            f"no mailbox {name!r} in the configuration: {', '.join(sorted(mailboxes))}"
        )
    return mailboxes[name]


def account_of(config: MailboxConfig) -> ImapAccount:
    """The :class:`~helpkit.channels.imap.ImapAccount` a configured mailbox describes."""
    try:
        return ImapAccount(
            host=config.host,
            port=config.port,
            security=config.security,
            user=config.user,
            password=config.password(),
            mailbox=config.mailbox,
            name=config.name,
            batch=config.batch,
            timeout=config.timeout,
            flag=config.flag,
            move_to=config.move_to,
        )
    except ConfigError:
        raise
    except ValidationError as exc:
        where = "mailbox" if config.name == "default" else f"imap.{config.name}"
        raise ConfigError(f"[{where}]: {exc}") from exc


def _poll_data(report: PollReport[Ingested]) -> dict[str, Any]:
    return {
        "mailbox": report.mailbox,
        "account": report.account,
        "uidvalidity": report.uidvalidity,
        "cursor": report.cursor,
        "before": report.before,
        "after": report.after,
        "messages": [{"uid": m.uid, **m.result.to_data()} for m in report.messages],
    }


def cmd_mail_poll(desk: Helpdesk, args: argparse.Namespace) -> int:
    if args.interval is not None and not args.follow:
        raise UsageError("--interval goes with --follow")
    config = mailbox_config(desk, args.name)
    poller: ImapPoller = ImapPoller(account_of(config), desk.store)
    handle = receiver(desk, args.channel)
    where = f"{config.name} ({config.user}@{config.host} {config.mailbox})"
    failed = 0

    def each(polled: Polled[Ingested]) -> None:
        nonlocal failed
        failed += not polled.result.ok
        if args.json:
            if args.follow:
                _json_line({"mailbox": config.name, "uid": polled.uid, **polled.result.to_data()})
        else:
            _line(f"{config.mailbox} uid {polled.uid}: {polled.result.line()}")

    if args.follow:
        return _follow(desk, args, poller, handle, each, config, where)
    report = poller.poll(handle, finished=_finished, on_message=each, group=desk.group_commit)
    if args.json:
        _emit_json(_poll_data(report))
    else:
        _line(
            f"poll: {len(report.messages)} new messages in {where}; last UID {report.after} "
            f"(UIDVALIDITY {report.uidvalidity})"
            + (f", {failed} unparseable (left in the mailbox)" if failed else "")
        )
    return EXIT_FAILURE if failed else EXIT_OK


def _follow(
    desk: Helpdesk,
    args: argparse.Namespace,
    poller: ImapPoller,
    handle: Callable[[bytes], Ingested],
    each: Callable[[Polled[Ingested]], None],
    config: MailboxConfig,
    where: str,
) -> int:
    """Poll every interval until SIGTERM or SIGINT; a poll that fails (server down, store
    locked) is reported and tried again at the next interval."""
    interval = args.interval if args.interval is not None else config.interval

    def failed(exc: HelpkitError) -> None:
        kind = "IMAP" if isinstance(exc, ImapError) else "store"
        print(f"helpkit: warning: {kind}: {exc} (trying again in {interval:g}s)", file=sys.stderr)
        sys.stderr.flush()

    def work(stop: threading.Event) -> int:
        return poller.follow(
            handle,
            stop,
            interval=interval,
            finished=_finished,
            on_message=each,
            on_error=failed,
            group=desk.group_commit,
        )

    if not args.json:
        _line(
            f"poll: following {where} every {interval:g}s from {desk.now():%Y-%m-%d %H:%M:%S} "
            "UTC; SIGTERM or Ctrl-C stops"
        )
    total, _ = run_until_signalled(work, name="helpkit-imap")
    if args.json:
        _json_line({"stopped": True, "messages": total})
    else:
        _line(f"poll: stopped; {total} messages in all")
    return EXIT_OK


# ------------------------------------------------------------------ suspended messages


def _receipt_row(receipt: Receipt) -> str:
    message = receipt.message
    sender = message.sender_address if message is not None else "?"
    subject = message.subject if message is not None else ""
    return (
        f"{receipt.key}\n    {receipt.received_at:%Y-%m-%d %H:%M} UTC  from {sender}: "
        f"{subject}\n    suspended: {receipt.reason or 'no reason given'}"
    )


def cmd_mail_suspended(desk: Helpdesk, args: argparse.Namespace) -> int:
    found = desk.suspended(limit=args.limit, after=args.after)
    more = found[-1].key if len(found) == args.limit else None
    if args.json:
        _emit_json({"suspended": [serialize.to_data(r) for r in found], "next_cursor": more})
        return EXIT_OK
    if not found:
        print("no suspended messages")
        return EXIT_OK
    for receipt in found:
        print(_receipt_row(receipt))
    if more:
        print(f"\nmore: --after {more}")
    print("\nIngest one anyway: helpkit mail release KEY; throw it away: helpkit mail discard KEY")
    return EXIT_OK


def cmd_mail_release(desk: Helpdesk, args: argparse.Namespace) -> int:
    intake = desk.release(args.key, args.actor)
    if args.json:
        _emit_json(serialize.to_data(intake))
    else:
        print(f"{args.key}: released: {outcome_line(intake)}")
    return EXIT_OK


def cmd_mail_discard(desk: Helpdesk, args: argparse.Namespace) -> int:
    receipt = desk.discard(args.key, args.actor)
    if args.json:
        _emit_json(serialize.to_data(receipt))
    else:
        print(f"{receipt.key}: discarded")
    return EXIT_OK
