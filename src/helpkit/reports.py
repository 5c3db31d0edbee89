# Over 600 lines: the KPI reader, the projection and its checkpoint file (writer and the
# restricted readers) share the checkpoint's layout, kept in one place.
"""KPI reports read from a store: the tickets and their events, streamed a page at a time.

Application layer (a service): it reads the store and hands each ticket's events to the pure
:func:`helpkit.kpis.ticket_record` (the ticket's facts as a compact record), then adds the
records up with :class:`helpkit.kpis.KpiAccumulator`. Only one page of tickets and one
ticket's events are held at a time, so a report's memory grows with the number of tickets'
small facts it keeps (durations, counters), not with their histories.
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO, Final, cast

import attrs

from helpkit._codec import decoder, encoder
from helpkit.errors import ConfigError, HelpkitError, NotFoundError, ValidationError
from helpkit.escalation import TierLadder
from helpkit.events import Event
from helpkit.kpis import (
    RECORD_LENGTH,
    Activity,
    FactRecord,
    FoldState,
    HandleTime,
    KeptFacts,
    KpiAccumulator,
    KpiFilter,
    KpiReport,
    Period,
    SlaOutcome,
    TicketFacts,
    keep_resumable,
    pack_facts,
    resume_facts,
    ticket_facts,
    ticket_record,
)
from helpkit.ports import Capability, ChangeFeed, Store, TicketReads, implements
from helpkit.priority import Impact, Priority, Urgency
from helpkit.queries import SortOrder, TicketQuery
from helpkit.sla import SlaFold, SlaPolicy, SlaPolicySet
from helpkit.tickets import StatusCategory, Ticket

__all__ = [
    "PAGE",
    "PROJECTION_CURSOR",
    "KpiProjection",
    "KpiReader",
    "OutdatedCheckpointError",
    "report_from_checkpoint",
]

PAGE = 500
"""Tickets read per query page."""

PROJECTION_CURSOR: Final = "kpi-projection"
"""The change-feed cursor a :class:`KpiProjection` saves its checkpoints' position under."""

_FORMAT: Final = 7
"""The checkpoint format (7: a header, then every ticket's facts as compact records
(:data:`~helpkit.kpis.FactRecord`: plain tuples) in pickles of :data:`_CHUNK` tickets each,
then the kept facts and resumable folds of the active tickets in the same way, so a report
can stream the records alone (:func:`report_from_checkpoint`); each fold's data is one
pickle of plain values, compressed: its ticket's state as a row (:func:`_ticket_row`) and
its SLA fold's :meth:`~helpkit.sla.SlaFold.to_data`; 6: the same with each fold's data one
JSON text; 5: a header, then the kept facts and the resumable folds in pickles of
:data:`_CHUNK` tickets each; 4: one pickle, facts with custom fields, time per tier and
handle time; 3: with the resumable folds of the active tickets; 2: facts with satisfaction
surveys). A checkpoint of an earlier format raises :class:`OutdatedCheckpointError` (the desk
then builds the projection anew); anything else is refused."""

_UNPACKED: Final = 10_000
"""At most this many tickets' kept facts wait to be packed into records
(:class:`KpiProjection`)."""

_CHUNK: Final = 2000
"""Tickets per pickle in a checkpoint: a pickler remembers every object it wrote until its
dump ends, which for a whole projection at once took more memory than the projection."""

_encode_ticket = encoder(Ticket)
_decode_ticket = decoder(Ticket)

# A resumable fold's ticket state in a checkpoint: a row of plain values in the order of
# Ticket's fields, each read by its kind. Text and counts are themselves; the enumerations
# (category, impact, urgency, priority) their member's value; instants ("at") whole
# microseconds since 1970-01-01 UTC; tags a tuple of texts. A ticket with followers, links
# or custom fields keeps the codec's form instead (a dict, decoded and validated field by
# field, at format 6's cost): their values are richer.
_ROW_KINDS: Final = (
    ("id", "str"),
    ("number", "int"),
    ("subject", "str"),
    ("requester_id", "str"),
    ("organization_id", "str?"),
    ("status", "str"),
    ("category", "category"),
    ("impact", "impact"),
    ("urgency", "urgency"),
    ("priority", "priority"),
    ("channel", "str"),
    ("created_at", "at"),
    ("updated_at", "at"),
    ("seq", "int"),
    ("assignee_id", "str?"),
    ("group_id", "str?"),
    ("tags", "tags"),
    ("followers", "empty"),
    ("custom_fields", "empty"),
    ("links", "empty"),
    ("merged_into", "str?"),
    ("solved_at", "at?"),
    ("closed_at", "at?"),
    ("public_comments", "int"),
    ("internal_notes", "int"),
    ("sla_policy", "str?"),
    ("next_deadline", "at?"),
    ("next_check", "at?"),
    ("last_message_id", "str?"),
    ("status_at", "at?"),
    ("satisfaction_offered_at", "at?"),
    ("satisfaction", "str?"),
    ("assigned_at", "at?"),
    ("requester_updated_at", "at?"),
    ("agent_updated_at", "at?"),
    ("unassigned_at", "at?"),
    ("assignee_updated_at", "at?"),
)
"""Ticket's fields as a checkpoint row holds them (``tests/test_kpis_projection.py`` checks
they are all of Ticket's, in order; if not, every ticket keeps the codec's form)."""

_ROWS: Final = tuple(name for name, _ in _ROW_KINDS) == tuple(f.name for f in attrs.fields(Ticket))


def _row_reader() -> Callable[[Any], Ticket]:
    # One straight line per field (as helpkit._records and the codec build theirs): the
    # types and shapes are checked, each value built as the field holds it; the text checks
    # of the validators are not run again on what a projection wrote (a row that is not
    # one raises TypeError, ValueError or KeyError: the ticket is folded again).
    lines = [
        "def _read(row):",
        f"    if row.__class__ is not tuple or len(row) != {len(_ROW_KINDS)}: raise ValueError",
        "    new = _new(_Ticket)",
        "    known = at = None",  # the last instant read, and its datetime (shared if equal)
    ]
    for index, (name, kind) in enumerate(_ROW_KINDS):
        # The usual values are checked inline (no call); anything else goes to a function
        # that reads it or raises.
        check = {
            "str": "v.__class__ is not str",
            "str?": "v is not None and v.__class__ is not str",
            "int": "v.__class__ is not int or v < 0",
            "at": "v.__class__ is not int",
            "at?": "v is not None and v.__class__ is not int",
        }.get(kind)
        lines.append(f"    v = row[{index}]")
        if check is not None:
            lines.append(f"    if {check}: raise TypeError({name!r})")
        if kind in ("at", "at?"):
            # Several of a ticket's instants are often the same one: built once.
            lines.append(
                "    if v is not None and v != known: known, at = v, _EPOCH + _span(0, 0, v)"
            )
        value = {
            "str": "v",
            "str?": "v",
            "int": "v",
            "category": "_CATEGORY[v]",
            "impact": "_IMPACT[v]",
            "urgency": "_URGENCY[v]",
            "priority": "_PRIORITY[v]",
            "at": "at",
            "at?": "None if v is None else at",
            "tags": "_EMPTY_SET if v == () else _tags(v)",
            "empty": f"_empty_{name}(v)",
        }[kind]
        lines.append(f"    _set_{name}(new, {value})")
    lines.append("    return new")
    namespace: dict[str, Any] = {
        "_new": object.__new__,
        "_Ticket": Ticket,
        "_EPOCH": _ROW_EPOCH,
        "_span": timedelta,
        "_tags": _row_tags,
        "_EMPTY_SET": frozenset(),
        "_CATEGORY": {c.value: c for c in StatusCategory},
        "_IMPACT": {c.value: c for c in Impact},
        "_URGENCY": {c.value: c for c in Urgency},
        "_PRIORITY": {c.value: c for c in Priority},
        "_empty_followers": _row_no_set,
        "_empty_links": _row_no_set,
        "_empty_custom_fields": _row_no_fields,
    }
    # Each field set through its slot's own descriptor (the class is frozen; this is what
    # object.__setattr__ finds, without looking it up by name).
    namespace.update({f"_set_{name}": Ticket.__dict__[name].__set__ for name, _ in _ROW_KINDS})
    exec("\n".join(lines), namespace)  # field names are identifiers
    read: Callable[[Any], Ticket] = namespace["_read"]
    return read


_ROW_EPOCH: Final[datetime] = datetime(1970, 1, 1, tzinfo=UTC)


def _row_str(value: object) -> str:
    if value.__class__ is not str:
        raise TypeError("not a text")
    return value


def _row_tags(value: object) -> frozenset[str]:
    if value.__class__ is not tuple:
        raise TypeError("not tags")
    return frozenset(map(_row_str, cast(tuple[object, ...], value)))


def _row_no_set(value: object) -> frozenset[Any]:
    if value is not None:
        raise ValueError("a row holds no followers or links")
    return frozenset()


_NO_FIELDS: Final[Mapping[str, Any]] = MappingProxyType({})


def _row_no_fields(value: object) -> Mapping[str, Any]:
    if value is not None:
        raise ValueError("a row holds no custom fields")
    return _NO_FIELDS


_read_row = _row_reader()


def _ticket_row(state: Ticket) -> tuple[Any, ...] | dict[str, Any]:
    """A ticket's state as a checkpoint keeps it: a row of plain values, or the codec's form
    (a dict) for a ticket with followers, links or custom fields."""
    if not _ROWS or state.followers or state.links or state.custom_fields:
        return _encode_ticket(state)  # type: ignore[no-any-return]
    row: list[Any] = []
    for name, kind in _ROW_KINDS:
        value = getattr(state, name)
        if value is None or kind in ("str", "str?", "int"):
            row.append(value)
        elif kind in ("at", "at?"):
            row.append((value - _ROW_EPOCH) // _ROW_MICRO)
        elif kind == "tags":
            row.append(tuple(sorted(value)))
        elif kind == "empty":
            row.append(None)
        else:  # an enumeration
            row.append(value.value)
    return tuple(row)


_ROW_MICRO: Final = timedelta(microseconds=1)


def _ticket_of(data: object) -> Ticket:
    """The ticket state of :func:`_ticket_row`'s form."""
    if data.__class__ is dict:
        return cast(Ticket, _decode_ticket(data))
    return _read_row(data)


_Resume = tuple[FoldState | bytes, str | None]
"""A ticket's resumable fold as a projection keeps it: its :class:`~helpkit.kpis.FoldState`
or, read from a checkpoint and not resumed since, its checkpoint form (one pickle of plain
values, compressed: its ticket state as a row, :func:`_ticket_row`, and its SLA fold's
:meth:`~helpkit.sla.SlaFold.to_data`), decoded only when the ticket is touched again; and
the name of its SLA policy."""


class KpiReader:
    """Streams a store's tickets into KPI facts and reports."""

    def __init__(
        self, store: Store, policies: SlaPolicySet | None, ladder: TierLadder | None
    ) -> None:
        self._store = store
        self._policies = policies
        self._ladder = ladder

    def tickets(self) -> Iterator[Ticket]:
        """Every ticket, oldest first, one query page at a time."""
        after: str | None = None
        while True:
            page = self._store.query(TicketQuery(sort=SortOrder.CREATED, limit=PAGE, after=after))
            yield from page.items
            if page.next_cursor is None:
                return
            after = page.next_cursor

    def policy(self, ticket: Ticket) -> SlaPolicy | None:
        """The SLA policy the ticket was last measured under (``None``: none, or a policy no
        longer configured)."""
        return _policy(self._policies, ticket)

    def facts(self, now: datetime) -> Iterator[TicketFacts]:
        """The facts of every ticket opened by ``now``."""
        for ticket in self.tickets():
            if ticket.created_at > now:
                continue
            found = ticket_facts(
                self._store.events(ticket.id),
                now,
                policy=self.policy(ticket),
                ladder=self._ladder,
            )
            if found is not None:
                yield found

    def report(
        self,
        now: datetime,
        kpi_filter: KpiFilter | None = None,
        period: Period = Period.DAY,
        fields: Iterable[str] | str = (),
    ) -> KpiReport:
        """The KPIs of the tickets ``kpi_filter`` selects, as of ``now`` (volume also by the
        custom ``fields`` named)."""
        accumulator = KpiAccumulator(now, kpi_filter, period, fields)
        add = accumulator.add_record
        # Each ticket's compact record straight from its events (ticket_record: the same as
        # pack_facts of its facts, which add_record counts as add counts the facts).
        for ticket in self.tickets():
            if ticket.created_at > now:
                continue
            found = ticket_record(
                self._store.events(ticket.id), now, policy=self.policy(ticket), ladder=self._ladder
            )
            if found is not None:
                add(found)
        return accumulator.report()


def _policy(policies: SlaPolicySet | None, ticket: Ticket) -> SlaPolicy | None:
    if policies is None or ticket.sla_policy is None:
        return None
    try:
        return policies.get(ticket.sla_policy)
    except NotFoundError:
        return None


def _ticket_reader(store: Store) -> Callable[[list[str]], list[Ticket]]:
    """How a page of the feed reads its tickets' stored states (for their SLA policies): at
    once where the store can (:attr:`Capability.TICKET_READS`, one statement), else one by
    one."""
    able: frozenset[str] = getattr(store, "capabilities", frozenset())
    if Capability.TICKET_READS in able and implements(store, TicketReads):
        return cast(TicketReads, store).get_tickets
    return lambda ticket_ids: [store.get_ticket(ticket_id) for ticket_id in ticket_ids]


def _write_whole(target: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write a checkpoint whole: to ``target.partial``, flushed to disk, then renamed into
    place (a reader sees the old file or the new one, never part of one)."""
    partial = target.with_name(target.name + ".partial")
    with partial.open("wb") as out:
        write(out)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(target)


def _feed(store: Store) -> ChangeFeed:
    able: frozenset[str] = getattr(store, "capabilities", frozenset())
    if not implements(store, ChangeFeed) or Capability.CHANGE_FEED not in able:
        raise ConfigError(
            f"{type(store).__name__} has no change feed (Capability.CHANGE_FEED): "
            "a KPI projection cannot follow it; compute reports in full instead"
        )
    return cast(ChangeFeed, store)


_CHECKPOINT_CLASSES: Final[Mapping[tuple[str, str], type]] = MappingProxyType(
    {
        (cls.__module__, cls.__qualname__): cls
        for cls in (
            date,
            datetime,
            timedelta,
            timezone,
            KeptFacts,
            TicketFacts,
            SlaOutcome,
            Activity,
            HandleTime,
            Priority,
            StatusCategory,
        )
    }
)
"""Exactly the classes a checkpoint of the current format holds (``_Checkpoint.find_class``):
its header's instant, and the active tickets' kept facts (:class:`~helpkit.kpis.KeptFacts`
and what they are made of: their facts, SLA outcomes, activities, priority, status category,
instants, durations, and a custom field's date). Any other class, of helpkit or not, is
refused before it is built."""


class OutdatedCheckpointError(ValidationError):
    """A KPI projection checkpoint written by an earlier helpkit (another checkpoint format):
    :meth:`Helpdesk.kpi_projection <helpkit.desk.Helpdesk.kpi_projection>` builds the
    projection anew instead."""

    def __init__(self, path: str, found: int) -> None:
        super().__init__(
            f"{path!r} is a KPI projection checkpoint of format {found}, written by an earlier "
            f"helpkit; this one reads format {_FORMAT}: build the projection anew"
        )
        self.path = path
        self.format = found


def _checkpoint_format(path: str | os.PathLike[str]) -> int | None:
    """The format number a checkpoint file starts with, read from its first pickle opcodes
    without building anything; ``None`` when it does not start like one (every format so
    far is a pickled tuple whose first item is its format number)."""
    try:
        with Path(path).open("rb") as source:
            for count, (opcode, argument, _) in enumerate(pickletools.genops(source)):
                if opcode.name in ("PROTO", "FRAME", "MARK"):
                    if count > 3:
                        return None
                    continue
                if opcode.name in ("BININT1", "BININT2", "BININT") and isinstance(argument, int):
                    return argument
                return None
    except (ValueError, OSError, EOFError):
        return None
    return None


class _Checkpoint(pickle.Unpickler):
    """Reads a checkpoint, building only the values a projection holds: its kept facts and
    instants (:data:`_CHECKPOINT_CLASSES`). Anything else (a checkpoint tampered with, or no
    checkpoint at all) is refused before it is built."""

    def find_class(self, module: str, name: str) -> Any:
        found = _CHECKPOINT_CLASSES.get((module, name))
        if found is None:
            raise ValidationError(f"a KPI projection checkpoint holds no {module}.{name}")
        return found


class KpiProjection:
    """Every ticket's KPI facts, kept up to date from a store's change feed, so a report adds
    up kept facts instead of folding every ticket's history.

    The host keeps it in memory: :meth:`update` reads the changes after :attr:`position`
    and, for each ticket they touch, folds in only its new events (taken from the changes)
    when it keeps the ticket's fold to resume (:attr:`resumable`: the tickets active as of
    their last event), or else folds again its whole history (one read of its events);
    either way it reads the ticket's stored SLA policy. Each ticket's facts are kept as a
    compact record (:data:`~helpkit.kpis.FactRecord`), and its kept facts and fold too while
    it is active. :meth:`report` then equals :meth:`KpiReader.report` (a full recomputation)
    as of any ``now`` at or after :attr:`as_of`. What depends on ``now`` (the backlog's ages,
    SLA cycles pending or breached) is computed at report time. :meth:`save` checkpoints it to
    a file (and saves its position under the store cursor :data:`PROJECTION_CURSOR`, so its
    lag shows beside the relay's); :meth:`load` takes it back, and :meth:`update` goes on from
    there; :func:`report_from_checkpoint` reports from the file without loading it.

    It works with any store with :attr:`~helpkit.ports.Capability.CHANGE_FEED` (memory,
    SQLite, PostgreSQL). The facts follow the SLA policies and tier ladder it was made with:
    after changing those, build a new projection.
    """

    def __init__(self, policies: SlaPolicySet | None, ladder: TierLadder | None) -> None:
        self._policies = policies
        self._ladder = ladder
        # Each ticket's record, pickled: ~0.35 KB a ticket of the bench's 10 events, against
        # ~1.5 KB as a tuple (its own small tuples and large integers).
        self._records: dict[str, bytes] = {}
        # Kept facts changed since the records were last made of them (packed before a
        # report, a save, or once there are _UNPACKED of them): an update does not pay for
        # the records, a report pays for those changed since the last one.
        self._unpacked: dict[str, KeptFacts] = {}
        self._kept: dict[str, KeptFacts] = {}
        self._resume: dict[str, _Resume] = {}
        self._position = 0
        self._as_of: datetime | None = None

    @property
    def position(self) -> int:
        """The change-feed position folded in so far (0: none)."""
        return self._position

    @property
    def as_of(self) -> datetime | None:
        """The latest event instant folded in (``None`` before any): reports are as of it or
        later."""
        return self._as_of

    @property
    def resumable(self) -> int:
        """How many tickets' folds are kept to resume (those active as of their last event
        folded in): an update folds only the new events of these, and the whole history of
        any other ticket it touches."""
        return len(self._resume)

    def __len__(self) -> int:
        self._pack()
        return len(self._records)

    def _pack(self) -> None:
        # The records of the kept facts changed since the last time.
        records = self._records
        for ticket_id, kept in self._unpacked.items():
            records[ticket_id] = _pickled(pack_facts(kept.facts, kept.dues, kept.last_at))
        self._unpacked.clear()

    def update(self, store: Store, *, limit: int = 1000, max_changes: int | None = None) -> int:
        """Fold in the changes committed after :attr:`position`, ``limit`` a read, until
        the feed's end (or ``max_changes`` of them); returns how many were read."""
        if limit < 1:
            raise ValidationError(f"limit must be at least 1; got {limit!r}")
        if max_changes is not None and max_changes < 0:
            raise ValidationError(f"max_changes must be at least 0; got {max_changes!r}")
        feed = _feed(store)
        if self._position > feed.last_position():
            raise ConfigError(
                f"the KPI projection is at change {self._position}, beyond the store's last "
                f"({feed.last_position()}): it was made from another store; build a new one"
            )
        read_tickets = _ticket_reader(store)
        read = 0
        while max_changes is None or read < max_changes:
            want = limit if max_changes is None else min(limit, max_changes - read)
            changes = feed.changes(after=self._position, limit=want)
            if not changes:
                break
            touched: dict[str, list[Event]] = {}
            for change in changes:
                touched.setdefault(change.event.ticket_id, []).append(change.event)
            tickets = read_tickets(list(touched))
            for (ticket_id, events), ticket in zip(touched.items(), tickets, strict=True):
                self._fold_in(store, ticket, ticket_id, events)
            self._position = changes[-1].position
            read += len(changes)
            if len(changes) < want:
                break
        return read

    def _fold_in(self, store: Store, ticket: Ticket, ticket_id: str, events: list[Event]) -> None:
        # The SLA policy is the ticket's stored one (set by the commit, not by an event).
        policy = _policy(self._policies, ticket)
        name = None if policy is None else policy.name
        kept = self._kept.get(ticket_id)
        saved = self._resume.get(ticket_id)
        from_file = saved is not None and isinstance(saved[0], bytes)
        fold = None if kept is None else self._resumable(ticket_id, name, policy)
        if kept is not None and fold is not None:
            new = [event for event in events if event.seq > fold.state.seq]
            if not new:
                return  # folded in already (from a whole history read after them)
            if new[0].seq == fold.state.seq + 1:
                try:
                    resumed = resume_facts(kept, fold, new, ladder=self._ladder)
                except (HelpkitError, ArithmeticError, *_UNREADABLE):
                    if not from_file:
                        raise
                    resumed = None  # kept facts from a checkpoint that do not resume
                if resumed is not None:
                    self._keep(ticket_id, *resumed, name)
                    return
        # Nothing to resume (a new ticket, one solved or closed, another SLA policy): its
        # whole history, read from the store.
        found = keep_resumable(store.events(ticket_id), policy=policy, ladder=self._ladder)
        self._keep(ticket_id, *found, name)

    def _resumable(
        self, ticket_id: str, name: str | None, policy: SlaPolicy | None
    ) -> FoldState | None:
        # The ticket's resumable fold under the SLA policy ``name`` (None: none kept, kept
        # under another policy, or unreadable).
        found = self._resume.get(ticket_id)
        if found is None or found[1] != name:
            return None
        fold = found[0]
        if isinstance(fold, FoldState):
            return fold
        try:  # from a checkpoint: its plain data, checked as it is read
            state, sla = _RowReader(io.BytesIO(zlib.decompress(fold))).load()
            found_fold = FoldState(
                _ticket_of(state),
                None if policy is None else SlaFold.from_data(sla, policy),
            )
        except (HelpkitError, zlib.error, OverflowError, *_UNREADABLE):
            return None  # folded again from its history
        sla_id = None if found_fold.sla is None else found_fold.sla.ticket_id
        if found_fold.state.id != ticket_id or sla_id not in (None, ticket_id):
            return None  # another ticket's: folded again from its history
        return found_fold

    def _keep(self, ticket_id: str, kept: KeptFacts, fold: FoldState, name: str | None) -> None:
        self._unpacked[ticket_id] = kept
        if len(self._unpacked) >= _UNPACKED:
            self._pack()
        # Only an active ticket's kept facts and fold are kept to resume: a solved or closed
        # one is touched again seldom, and then folded again from its history.
        if kept.facts.active:
            self._kept[ticket_id] = kept
            self._resume[ticket_id] = (fold, name)
        else:
            self._kept.pop(ticket_id, None)
            self._resume.pop(ticket_id, None)
        if self._as_of is None or kept.last_at > self._as_of:
            self._as_of = kept.last_at

    def records(self) -> Iterator[FactRecord]:
        """Every ticket's kept facts, as compact records (see :func:`helpkit.kpis.pack_facts`)."""
        self._pack()
        return map(pickle.loads, self._records.values())

    def report(
        self,
        now: datetime,
        kpi_filter: KpiFilter | None = None,
        period: Period = Period.DAY,
        fields: Iterable[str] | str = (),
    ) -> KpiReport:
        """The KPIs of the tickets ``kpi_filter`` selects, as of ``now`` (at or after
        :attr:`as_of`), from the kept facts (volume also by the custom ``fields`` named)."""
        _not_before(now, self._as_of)
        self._pack()
        accumulator = KpiAccumulator(now, kpi_filter, period, fields)
        add = accumulator.add_record
        loads = pickle.loads
        try:
            for record in self._records.values():
                add(loads(record))
        except HelpkitError:
            raise
        except (ArithmeticError, *_UNREADABLE) as exc:
            raise ValidationError(
                "the KPI projection holds a record that does not add up (read from a damaged "
                "checkpoint?)"
            ) from exc
        return accumulator.report()

    def save(self, path: str | os.PathLike[str], store: Store | None = None) -> None:
        """Checkpoint to ``path`` (written whole, then renamed into place); with ``store``,
        also save :attr:`position` under its cursor :data:`PROJECTION_CURSOR`."""
        self._pack()
        records = list(self._records.values())  # each unpickled as its chunk is written
        resumable = list(self._resume.items())
        record_chunks = range(0, len(records), _CHUNK)
        resume_chunks = range(0, len(resumable), _CHUNK)
        header = (_FORMAT, self._position, self._as_of, len(record_chunks), len(resume_chunks))

        def write(out: BinaryIO) -> None:
            pickle.dump(header, out, protocol=pickle.HIGHEST_PROTOCOL)
            for start in record_chunks:
                chunk = [pickle.loads(record) for record in records[start : start + _CHUNK]]
                pickle.dump(chunk, out, protocol=pickle.HIGHEST_PROTOCOL)
            for start in resume_chunks:
                folds = {
                    ticket_id: (self._kept[ticket_id], *_resume_data(found))
                    for ticket_id, found in resumable[start : start + _CHUNK]
                }
                pickle.dump(folds, out, protocol=pickle.HIGHEST_PROTOCOL)

        _write_whole(Path(path), write)
        if store is not None:
            _feed(store).save_cursor(PROJECTION_CURSOR, self._position)

    @classmethod
    def build_checkpoint(
        cls,
        path: str | os.PathLike[str],
        store: Store,
        policies: SlaPolicySet | None,
        ladder: TierLadder | None,
        *,
        limit: int = 1000,
    ) -> None:
        """Build a projection from the store's whole change feed straight into a checkpoint
        at ``path``, streamed: the same file as a projection built in memory
        (:class:`KpiProjection` then :meth:`update`), then saved with ``store``, byte
        for byte, but holding at most :data:`_CHUNK` tickets' records and :data:`_CHUNK`
        active tickets' kept facts and folds at a time, not the whole projection. The feed is
        read ``limit`` changes a page; each ticket's whole history is folded once, at its
        opening event (``seq`` 1), in the order the feed opened them. The build covers the
        feed up to its end when the build starts: a change committed meanwhile (to a ticket
        folded already, or opening one) is after the checkpoint's position, so the next
        :meth:`update` (or a report from the file) takes it in. Each section is written
        to a temporary file beside ``path`` as it fills (the header, written first, counts
        their chunks), then the three are joined into ``path`` (written whole, then renamed
        into place), and :attr:`position` saved under the store's cursor
        :data:`PROJECTION_CURSOR`."""
        if limit < 1:
            raise ValidationError(f"limit must be at least 1; got {limit!r}")
        feed = _feed(store)
        read_tickets = _ticket_reader(store)
        target = Path(path)
        protocol = pickle.HIGHEST_PROTOCOL
        position = 0
        # The end of the feed now: what is committed during the build stays for the updates
        # after it (a ticket folded early would otherwise miss its events of the meantime).
        end = feed.last_position()
        as_of: datetime | None = None
        counts = [0, 0]  # record chunks, resume chunks written
        with (
            tempfile.TemporaryFile(dir=target.parent) as record_part,
            tempfile.TemporaryFile(dir=target.parent) as resume_part,
        ):
            parts = (record_part, resume_part)

            def spill(which: int, chunk: object) -> None:
                # A full (or the last) chunk of a section, to its temporary file.
                pickle.dump(chunk, parts[which], protocol=protocol)
                counts[which] += 1

            records: list[FactRecord] = []
            folds: dict[str, tuple[KeptFacts, str | None, bytes]] = {}
            while position < end and (changes := feed.changes(after=position, limit=limit)):
                read_all = len(changes) < limit
                changes = [c for c in changes if c.position <= end]
                if not changes:
                    break
                opened = [c.event.ticket_id for c in changes if c.event.seq == 1]
                for ticket_id, ticket in zip(opened, read_tickets(opened), strict=True):
                    policy = _policy(policies, ticket)
                    name = None if policy is None else policy.name
                    kept, fold = keep_resumable(
                        store.events(ticket_id), policy=policy, ladder=ladder
                    )
                    # Through a pickle, as a save reads each record back from its own.
                    record = pack_facts(kept.facts, kept.dues, kept.last_at)
                    records.append(pickle.loads(_pickled(record)))
                    if len(records) == _CHUNK:
                        spill(0, records)
                        records = []
                    if kept.facts.active:
                        folds[ticket_id] = (kept, *_resume_data((fold, name)))
                        if len(folds) == _CHUNK:
                            spill(1, folds)
                            folds = {}
                    if as_of is None or kept.last_at > as_of:
                        as_of = kept.last_at
                position = changes[-1].position
                if read_all:
                    break
            if records:
                spill(0, records)
            if folds:
                spill(1, folds)
            del records, folds
            header = (_FORMAT, position, as_of, *counts)

            def write(out: BinaryIO) -> None:
                pickle.dump(header, out, protocol=protocol)
                for part in parts:
                    part.seek(0)
                    shutil.copyfileobj(part, out, 1 << 20)

            _write_whole(target, write)
        feed.save_cursor(PROJECTION_CURSOR, position)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        policies: SlaPolicySet | None,
        ladder: TierLadder | None,
    ) -> KpiProjection:
        """A projection from a checkpoint :meth:`save` wrote, made with the same policies and
        ladder. Only the values a projection holds are built from the file; anything else is a
        ValidationError."""
        refused = _refused(path)
        records: dict[str, bytes] = {}
        resume: dict[Any, Any] = {}
        with _open_checkpoint(path) as (position, as_of, chunks):
            for chunk in chunks:
                for record in chunk:
                    records[record[0]] = _pickled(record)
            try:
                for _ in range(chunks.resume_chunks):
                    found = _Checkpoint(chunks.source).load()
                    if not isinstance(found, dict):
                        raise refused
                    resume.update(found)
            except ValidationError:
                raise
            except _UNREADABLE as exc:
                raise refused from exc
        if not all(_is_resume_data(k, v) and k in records for k, v in resume.items()):
            raise refused
        projection = cls(policies, ladder)
        projection._position = position
        projection._as_of = as_of
        projection._records = records
        projection._kept = {k: kept for k, (kept, _, _) in resume.items()}
        # Each resumable fold stays in its plain form until its ticket is touched again.
        projection._resume = {k: (data, name) for k, (_, name, data) in resume.items()}
        return projection


def _pickled(record: FactRecord) -> bytes:
    return pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)


_UNREADABLE: Final = (
    pickle.UnpicklingError,
    EOFError,
    AttributeError,
    ImportError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    MemoryError,
)


def _refused(path: str | os.PathLike[str]) -> ValidationError:
    return ValidationError(f"{os.fspath(path)!r} is not a KPI projection checkpoint")


def _not_before(now: datetime, as_of: datetime | None) -> None:
    if as_of is not None and now < as_of:
        raise ValidationError(
            f"the KPI projection holds events up to {as_of.isoformat()}: "
            "a report from it is as of then or later"
        )


def _is_record(value: object) -> bool:
    # The shape of a checkpoint's record (its items are checked as they are added up).
    return (
        isinstance(value, tuple)
        and len(value) == RECORD_LENGTH
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    )


class _Records:
    """The record chunks of an open checkpoint, read one at a time (each checked), then the
    file positioned at its resumable folds."""

    def __init__(self, path: str | os.PathLike[str], source: Any, chunks: int, resume: int):
        self._path = path
        self.source = source
        self._chunks = chunks
        self.resume_chunks = resume

    def __iter__(self) -> Iterator[list[FactRecord]]:
        refused = _refused(self._path)
        for _ in range(self._chunks):
            try:
                chunk = _Records.Reader(self.source).load()
            except _UNREADABLE as exc:
                raise refused from exc
            if not isinstance(chunk, list) or not all(_is_record(r) for r in chunk):
                raise refused
            yield chunk

    class Reader(pickle.Unpickler):
        """Records are plain values: no class at all is built."""

        def find_class(self, module: str, name: str) -> Any:
            raise ValidationError(f"KPI records hold no {module}.{name}")


class _OpenCheckpoint:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = path
        self._source: Any = None

    def __enter__(self) -> tuple[int, datetime | None, _Records]:
        path = self._path
        refused = _refused(path)
        version = _checkpoint_format(path)
        if version is not None and 2 <= version < _FORMAT:
            raise OutdatedCheckpointError(os.fspath(path), version)
        try:
            self._source = Path(path).open("rb")
        except OSError as exc:
            raise ValidationError(
                f"the KPI projection checkpoint {os.fspath(path)!r} cannot be read: {exc.strerror}"
            ) from exc
        try:
            header = _Checkpoint(self._source).load()
        except ValidationError:
            self._source.close()
            raise
        except _UNREADABLE as exc:
            self._source.close()
            raise refused from exc
        if not (
            isinstance(header, tuple)
            and len(header) == 5
            and header[0] == _FORMAT
            and isinstance(header[1], int)
            and (header[2] is None or isinstance(header[2], datetime))
            and all(isinstance(n, int) and n >= 0 for n in header[3:])
        ):
            self._source.close()
            raise refused
        _, position, as_of, record_chunks, resume_chunks = header
        return position, as_of, _Records(path, self._source, record_chunks, resume_chunks)

    def __exit__(self, *_: object) -> None:
        if self._source is not None:
            self._source.close()


def _open_checkpoint(path: str | os.PathLike[str]) -> _OpenCheckpoint:
    return _OpenCheckpoint(path)


def report_from_checkpoint(
    path: str | os.PathLike[str],
    store: Store,
    now: datetime,
    kpi_filter: KpiFilter | None = None,
    period: Period = Period.DAY,
    fields: Iterable[str] | str = (),
    *,
    policies: SlaPolicySet | None,
    ladder: TierLadder | None,
) -> KpiReport:
    """The KPIs as of ``now`` from a projection checkpoint (:meth:`KpiProjection.save`) and
    the store's changes since, streamed: the file's records are added up a chunk at a time
    (never the whole projection in memory), skipping the tickets changed after the
    checkpoint's position, whose whole histories are folded from ``store`` instead (as
    :meth:`KpiReader.report` does). The same figures as a full recomputation, for a
    checkpoint made with the same ``policies`` and ``ladder``; a ``now`` before the
    checkpoint's latest event is refused (ValidationError). The store needs a change feed."""
    feed = _feed(store)
    accumulator = KpiAccumulator(now, kpi_filter, period, fields)
    with _open_checkpoint(path) as (position, as_of, chunks):
        if position > feed.last_position():
            raise ConfigError(
                f"the KPI projection checkpoint is at change {position}, beyond the store's "
                f"last ({feed.last_position()}): it was made from another store"
            )
        _not_before(now, as_of)
        touched: dict[str, None] = {}
        after = position
        while changes := feed.changes(after=after, limit=PAGE * 10):
            for change in changes:
                touched[change.event.ticket_id] = None
            after = changes[-1].position
        add = accumulator.add_record
        try:
            for chunk in chunks:
                for record in chunk:
                    if record[0] not in touched:
                        add(record)
        except (ArithmeticError, *_UNREADABLE) as exc:
            raise _refused(path) from exc
    reader = KpiReader(store, policies, ladder)
    for ticket_id in touched:
        try:
            ticket = store.get_ticket(ticket_id)
        except NotFoundError:
            continue
        if ticket.created_at > now:
            continue
        found = ticket_record(
            store.events(ticket_id), now, policy=reader.policy(ticket), ladder=ladder
        )
        if found is not None:
            add(found)
    return accumulator.report()


class _RowReader(pickle.Unpickler):
    """A resumable fold's data is plain values: no class at all is built."""

    def find_class(self, module: str, name: str) -> Any:
        raise ValidationError(f"a resumable fold holds no {module}.{name}")


def _resume_data(found: _Resume) -> tuple[str | None, bytes]:
    # A resumable fold as plain data (its ticket's state and SLA fold), for a checkpoint.
    fold, name = found
    if isinstance(fold, bytes):
        return name, fold
    # One pickle of plain values (no class: read back by _RowReader, which builds none),
    # compressed: the projection keeps it so until the ticket is touched again.
    sla = None if fold.sla is None else fold.sla.to_data()
    data = pickle.dumps((_ticket_row(fold.state), sla), protocol=pickle.HIGHEST_PROTOCOL)
    return name, zlib.compress(data, 1)


def _is_resume_data(ticket_id: object, value: object) -> bool:
    # The shape of a checkpoint's resumable fold: the ticket's kept facts, its SLA policy's
    # name and its fold's plain data (its contents are checked when resumed).
    return (
        isinstance(ticket_id, str)
        and isinstance(value, tuple)
        and len(value) == 3
        and isinstance(value[0], KeptFacts)
        and _kept_facts_shape(ticket_id, value[0])
        and (value[1] is None or isinstance(value[1], str))
        and isinstance(value[2], bytes)
    )


def _kept_facts_shape(ticket_id: str, kept: KeptFacts) -> bool:
    # The unpickler builds a KeptFacts without its validators: its fields' types, checked
    # (what they hold is checked when the ticket is resumed, or it is folded again).
    facts = kept.facts
    return (
        isinstance(facts, TicketFacts)
        and facts.ticket_id == ticket_id
        and isinstance(kept.last_at, datetime)
        and kept.last_at.tzinfo is not None
        and isinstance(kept.dues, tuple)
        and all(due is None or isinstance(due, datetime) for due in kept.dues)
    )
