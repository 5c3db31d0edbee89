"""Attachments: safe filenames, content types and limits (properties), ``keep``, and files on
comments through the facade (refused before anything is written, sent with replies, read back
only through their own ticket)."""

from __future__ import annotations

import hashlib
import string
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpkit import Actor, DeskConfig, Helpdesk, serialize
from helpkit.attachments import (
    MAX_FILENAME,
    AttachmentLimits,
    UnconfiguredBlobStore,
    content_type_of,
    default_blobs,
    keep,
    safe_filename,
)
from helpkit.blobs.folder import FolderBlobStore
from helpkit.blobs.memory import MemoryBlobStore
from helpkit.channels.recording import RecordingChannel
from helpkit.errors import (
    AttachmentError,
    ConfigError,
    NotFoundError,
    StoreError,
    ValidationError,
)
from helpkit.events import CommentAdded
from helpkit.hookspecs import RegisterChannel, hookimpl
from helpkit.ports import Channel, InboundAttachment, OutboundMessage
from helpkit.stores.memory import MemoryStore
from helpkit.testing.strategies import attachments
from helpkit.tickets import Attachment

AGENT = Actor.agent("agent-1")
_INVISIBLE = ("Cc", "Cf", "Cs", "Zl", "Zp")


def _file(
    name: str = "report.pdf", data: bytes = b"%PDF-1.7", kind: str = "application/pdf"
) -> InboundAttachment:
    return InboundAttachment(filename=name, content_type=kind, data=data)


# ---------------------------------------------------------------- filenames


@settings(max_examples=400)
@given(st.text(min_size=1, max_size=400).filter(str.strip))
def test_safe_filenames_are_safe_and_stable(name: str) -> None:
    safe = safe_filename(name)
    assert safe and safe == safe.strip()
    assert "/" not in safe and "\\" not in safe
    assert not any(unicodedata.category(c) in _INVISIBLE for c in safe)
    assert not set(safe) & set('<>:"|?*')
    assert len(safe) <= MAX_FILENAME
    assert safe.strip(".")  # never "." or ".."
    assert not safe.endswith((".", " "))
    assert safe_filename(safe) == safe


@given(st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=60))
def test_plain_names_are_kept_as_they_are(stem: str) -> None:
    assert safe_filename(f"{stem}.pdf") == f"{stem}.pdf"


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ann\\Report Q3.xlsx", "Report Q3.xlsx"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # a right-to-left override dropped
        ("bell\x07\x00.txt", "bell.txt"),
        ('what?: "yes" <no>|*.txt', "what__ _yes_ _no___.txt"),
        ("..", "attachment"),
        ("  ", "attachment"),
        ("dir/", "attachment"),
        ("name. . .", "name"),
        ("Grüße 世界.png", "Grüße 世界.png"),
    ],
)
def test_worked_filenames(name: str, safe: str) -> None:
    assert safe_filename(name) == safe


def test_a_long_name_is_cut_keeping_its_extension() -> None:
    safe = safe_filename("x" * 500 + ".docx")
    assert len(safe) == MAX_FILENAME and safe.endswith("x.docx")
    assert len(safe_filename("y" * 500)) == MAX_FILENAME
    assert safe_filename("z" * 300 + "." + "e" * 40).startswith("z" * 199)


# ---------------------------------------------------------------- content types

_TOKENS = st.text(string.ascii_letters + string.digits + "!#$&^_.+-", min_size=1, max_size=20)


@given(_TOKENS, _TOKENS, st.sampled_from(["", "; charset=utf-8", ' ; name="a b"']))
def test_content_types_are_kept_lower_case_without_parameters(
    main: str, sub: str, parameters: str
) -> None:
    assert content_type_of(f"{main}/{sub}{parameters}") == f"{main}/{sub}".lower()


@pytest.mark.parametrize(
    "bad", ["", "text", "text/", "/plain", "text/plain/x", "te xt/plain", "tëxt/plain", "a\nb/c"]
)
def test_malformed_content_types_are_refused_naming_the_file(bad: str) -> None:
    with pytest.raises(AttachmentError, match=r"notes\.txt") as info:
        content_type_of(bad, filename="notes.txt")
    assert info.value.filename == "notes.txt"
    assert isinstance(info.value, ValueError)


# ---------------------------------------------------------------- limits and keep

_LIMITS = AttachmentLimits(max_file_bytes=100, max_files=3, max_total_bytes=180)


@settings(max_examples=300)
@given(st.lists(st.integers(0, 130), max_size=5))
def test_keep_refuses_exactly_what_breaks_a_limit_and_then_puts_nothing(sizes: list[int]) -> None:
    blobs = MemoryBlobStore()
    files = [_file(f"f{i}.bin", bytes([i]) * size) for i, size in enumerate(sizes)]
    breaks = len(sizes) > 3 or any(s > 100 for s in sizes) or sum(sizes) > 180
    ids = iter(f"id{i}" for i in range(10))
    if breaks:
        with pytest.raises(AttachmentError) as info:
            keep(blobs, files, limits=_LIMITS, new_id=lambda: next(ids))
        named = info.value.filename
        assert named is not None and named in {f.filename for f in files}
        assert named in str(info.value)
        assert not any(blobs.exists(hashlib.sha256(f.data).hexdigest()) for f in files)
        return
    kept = keep(blobs, files, limits=_LIMITS, new_id=lambda: next(ids))
    assert [a.id for a in kept] == [f"id{i}" for i in range(len(files))]
    for attachment, file in zip(kept, files, strict=True):
        assert attachment.size == len(file.data)
        assert attachment.sha256 == hashlib.sha256(file.data).hexdigest()
        assert blobs.get(attachment.sha256) == file.data
        assert attachment.filename == file.filename


def test_keep_checks_every_content_type_before_putting_anything() -> None:
    blobs = MemoryBlobStore()
    files = [_file("fine.pdf", b"one"), _file("bad.bin", b"two", "nonsense")]
    with pytest.raises(AttachmentError, match=r"bad\.bin"):
        keep(blobs, files, limits=AttachmentLimits(), new_id=lambda: "x")
    assert not blobs.exists(hashlib.sha256(b"one").hexdigest())


def test_keep_describes_inline_images_with_their_content_id() -> None:
    image = InboundAttachment(
        filename="logo.png",
        content_type="IMAGE/PNG",
        data=b"\x89PNG",
        inline=True,
        content_id="<logo@x>",
    )
    (kept,) = keep(MemoryBlobStore(), [image], limits=AttachmentLimits(), new_id=lambda: "a1")
    assert (kept.inline, kept.content_id, kept.content_type) == (True, "logo@x", "image/png")


def test_keep_refuses_a_blob_store_that_answers_another_address() -> None:
    class Lying(MemoryBlobStore):
        def put(self, data: bytes) -> str:
            super().put(data)
            return "0" * 64

    with pytest.raises(StoreError, match="not under its SHA-256"):
        keep(Lying(), [_file()], limits=AttachmentLimits(), new_id=lambda: "a1")


def test_keep_refuses_what_is_not_a_list_of_inbound_attachments() -> None:
    for bad in (None, b"bytes", [b"bytes"], "a.pdf"):
        with pytest.raises(ValidationError):
            keep(MemoryBlobStore(), bad, limits=AttachmentLimits(), new_id=lambda: "a")  # type: ignore[arg-type]


def test_limits_from_the_configuration() -> None:
    assert AttachmentLimits.from_dict({}) == AttachmentLimits()
    assert AttachmentLimits().max_file_bytes == 25 * 1024 * 1024
    limits = AttachmentLimits.from_dict({"max_files": 0, "max_total_bytes": 10})
    assert (limits.max_files, limits.max_total_bytes) == (0, 10)
    bads: list[object] = [
        {"max_size": 1},
        {"max_files": -1},
        {"max_files": "3"},
        {"max_files": True},
        [],
    ]
    for bad in bads:
        with pytest.raises(ConfigError):
            AttachmentLimits.from_dict(bad)  # type: ignore[arg-type]
    config = DeskConfig.from_dict(
        {"blobs": "file:///srv/blobs", "attachments": {"max_file_bytes": 1000}}
    )
    assert config.blobs == "file:///srv/blobs"
    assert config.attachments == AttachmentLimits(max_file_bytes=1000)
    for bad_blobs in ("", 3, ["memory://"]):
        with pytest.raises(ConfigError, match="blobs"):
            DeskConfig.from_dict({"blobs": bad_blobs})
    with pytest.raises(ConfigError, match="max_size"):
        DeskConfig.from_dict({"attachments": {"max_size": 1}})


def test_the_default_blob_store_of_each_kind_of_store(tmp_path: Path) -> None:
    assert default_blobs("memory://") == "memory://"
    assert default_blobs(MemoryStore()) == "memory://"
    assert default_blobs(f"sqlite:///{tmp_path}/desk.db") == f"file://{tmp_path}/desk.db.blobs"
    assert default_blobs("sqlite:///a%20b.db?timeout=3") == (f"file://{Path.cwd()}/a%20b.db.blobs")
    # Flushed as the store's commits are: not at all for synchronous=NORMAL.
    assert default_blobs(f"sqlite:///{tmp_path}/desk.db?synchronous=FULL") == (
        f"file://{tmp_path}/desk.db.blobs"
    )
    assert default_blobs(f"sqlite:///{tmp_path}/desk.db?timeout=3&synchronous=normal") == (
        f"file://{tmp_path}/desk.db.blobs?fsync=false"
    )
    assert default_blobs("postgresql://localhost/helpkit") is None
    assert default_blobs("sqlite://host/x.db") is None


# ---------------------------------------------------------------- through the facade


@pytest.fixture
def desk(helpkit_desk: Helpdesk, helpkit_agent: Actor) -> Helpdesk:
    helpkit_desk.create_contact("Bob", emails=["bob@acme.example"], contact_id="bob")
    return helpkit_desk


def _sent(desk: Helpdesk) -> RecordingChannel:
    channel = desk.channels["email"]
    assert isinstance(channel, RecordingChannel)
    return channel


def test_an_agent_reply_keeps_its_files_and_sends_their_descriptions(desk: Helpdesk) -> None:
    ticket = desk.open_ticket(Actor.contact("bob"), requester="bob", subject="S", body="Hi")
    pdf = _file("../Quote.pdf", b"%PDF quote")
    ticket = desk.reply(ticket, AGENT, "Here it is", attachments=[pdf])
    event = desk.history(ticket)[-1]
    comment = next(e.comment for e in reversed(desk.history(ticket)) if isinstance(e, CommentAdded))
    (attachment,) = comment.attachments
    assert attachment.filename == "Quote.pdf" and attachment.size == len(pdf.data)
    assert desk.attachment(ticket, attachment.id) == attachment
    assert desk.attachment_bytes(ticket, attachment.id) == pdf.data
    assert desk.blobs.get(attachment.sha256) == pdf.data
    assert _sent(desk).messages[-1].attachments == (attachment,)
    assert event.seq == ticket.seq


def test_notes_requester_replies_and_new_tickets_take_files(desk: Helpdesk) -> None:
    bob = Actor.contact("bob")
    ticket = desk.open_ticket(
        bob, requester="bob", subject="S", body="Screenshot attached",
        attachments=[_file("shot.png", b"png", "image/png")],
    )  # fmt: skip
    ticket = desk.note(ticket, AGENT, "log", attachments=[_file("log.txt", b"log", "text/plain")])
    ticket = desk.requester_reply(ticket, "more", attachments=[_file("more.txt", b"more")])
    names = [a.filename for c in desk.conversation(ticket) for a in c.attachments]
    assert names == ["shot.png", "log.txt", "more.txt"]
    public = [a.filename for c in desk.conversation(ticket, include_internal=False)
              for a in c.attachments]  # fmt: skip
    assert public == ["shot.png", "more.txt"]
    with pytest.raises(ValidationError, match="give a body"):
        desk.open_ticket(bob, requester="bob", subject="S", attachments=[_file()])


def test_a_message_to_a_closed_ticket_brings_its_files_to_the_follow_up(desk: Helpdesk) -> None:
    ticket = desk.open_ticket(Actor.contact("bob"), requester="bob", subject="S", body="Hi")
    desk.close(ticket, AGENT)
    follow_up = desk.requester_reply(ticket, "again", attachments=[_file("again.pdf", b"2")])
    assert follow_up.id != ticket.id
    (attachment,) = desk.conversation(follow_up)[0].attachments
    assert desk.attachment_bytes(follow_up, attachment.id) == b"2"


def test_attachments_are_read_only_through_their_own_ticket(desk: Helpdesk) -> None:
    bob = Actor.contact("bob")
    mine = desk.open_ticket(bob, requester="bob", subject="S", body="x", attachments=[_file()])
    other = desk.open_ticket(bob, requester="bob", subject="T", body="y")
    attachment = desk.conversation(mine)[0].attachments[0]
    with pytest.raises(NotFoundError):
        desk.attachment_bytes(other, attachment.id)
    with pytest.raises(NotFoundError):
        desk.attachment(mine, "no-such-attachment")
    # Merged in, its files come along.
    desk.merge(mine, other, AGENT)
    assert desk.attachment_bytes(other, attachment.id) == b"%PDF-1.7"


def test_a_refused_attachment_writes_nothing(tmp_path: Path) -> None:
    config = {"attachments": {"max_file_bytes": 10, "max_files": 2}}
    db = tmp_path / "desk.db"
    with Helpdesk(f"sqlite:///{db}", config=config, entry_points=False) as desk:
        desk.add_group("l1", "Desk")
        desk.add_agent("agent-1", "Al", groups=["l1"])
        ticket = desk.open_ticket(AGENT, requester="bob@acme.example", subject="S", body="b")
        # The database and its write-ahead log (the -shm index changes on reads too).
        before = {p.name: p.read_bytes() for p in tmp_path.glob("desk.db*") if p.is_file()}
        before.pop("desk.db-shm", None)
        history = desk.history(ticket)
        attempts: list[dict[str, Any]] = [
            {"attachments": [_file("big.pdf", b"x" * 11)]},
            {"attachments": [_file("a"), _file("b"), _file("c")]},
            {"attachments": [_file("ok.txt", b"ok"), _file("weird", b"w", "weird")]},
        ]
        for attempt in attempts:
            with pytest.raises(AttachmentError):
                desk.reply(ticket, AGENT, "files", **attempt)
            with pytest.raises(AttachmentError):
                desk.open_ticket(
                    AGENT, requester="new@acme.example", subject="S", body="b", **attempt
                )
        after = {p.name: p.read_bytes() for p in tmp_path.glob("desk.db*") if p.is_file()}
        after.pop("desk.db-shm", None)
        assert after == before
        assert desk.history(ticket) == history
        assert not (tmp_path / "desk.db.blobs").exists()
        assert desk.find_contacts("new") == []


def test_an_sqlite_desk_keeps_files_beside_its_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/desk.db"
    with Helpdesk(url, entry_points=False) as desk:
        assert isinstance(desk.blobs, FolderBlobStore)
        assert desk.blobs.root == tmp_path / "desk.db.blobs"
        desk.add_group("l1", "Desk")
        desk.add_agent("agent-1", "Al", groups=["l1"])
        ticket = desk.open_ticket(
            AGENT, requester="ann@acme.example", subject="S", body="b",
            attachments=[_file("kept.bin", b"\x00\x01")],
        )  # fmt: skip
    with Helpdesk(url, entry_points=False) as reopened:
        (attachment,) = reopened.conversation(ticket.id)[0].attachments
        assert reopened.attachment_bytes(ticket.id, attachment.id) == b"\x00\x01"


def test_the_blob_store_comes_from_the_argument_then_the_config_then_the_default(
    tmp_path: Path,
) -> None:
    given = MemoryBlobStore()
    config = {"blobs": f"file://{tmp_path}/configured"}
    assert Helpdesk(blobs=given, entry_points=False).blobs is given
    from_config = Helpdesk(config=config, entry_points=False).blobs
    assert isinstance(from_config, FolderBlobStore)
    assert from_config.root == tmp_path / "configured"
    assert isinstance(
        Helpdesk(config=config, blobs="memory://", entry_points=False).blobs, MemoryBlobStore
    )
    assert isinstance(Helpdesk(entry_points=False).blobs, MemoryBlobStore)
    with pytest.raises(ValidationError, match="BlobStore"):
        Helpdesk(blobs=object(), entry_points=False)  # type: ignore[arg-type]


class _PersistentMemoryStore(MemoryStore):
    """Stands for a store with no safe default blob store (PostgreSQL, a plugin's)."""

    capabilities = frozenset({*MemoryStore.capabilities, "persistent"})


def test_a_desk_without_a_blob_store_refuses_files_and_says_how_to_configure_one() -> None:
    desk = Helpdesk(_PersistentMemoryStore(), entry_points=False)
    assert isinstance(desk.blobs, UnconfiguredBlobStore)
    desk.add_group("l1", "Desk")
    desk.add_agent("agent-1", "Al", groups=["l1"])
    ticket = desk.open_ticket(AGENT, requester="c@x.example", subject="S", body="b")
    with pytest.raises(ConfigError, match=r"Helpdesk\(blobs=\.\.\.\)"):
        desk.requester_reply(ticket, "file", attachments=[_file()])
    assert len(desk.conversation(ticket)) == 1
    # No files: nothing changes for it.
    desk.requester_reply(ticket, "no file")


def test_channel_factories_receive_the_blob_store(tmp_path: Path) -> None:
    seen: list[Mapping[str, Any]] = []

    class Plugin:
        @hookimpl
        def helpkit_register_channels(self, register: RegisterChannel) -> None:
            def factory(options: Mapping[str, Any]) -> Channel:
                seen.append(options)
                return RecordingChannel(str(options["name"]))

            register("spy", factory)

    blobs = MemoryBlobStore()
    config = {
        "channels": {
            "out": {"type": "spy", "colour": "red"},
            "mail": {"type": "maildir", "directory": str(tmp_path / "m"), "sender": "s@x.example"},
        }
    }
    Helpdesk(config=config, plugins=[Plugin()], entry_points=False, blobs=blobs)
    assert seen[0]["blobs"] is blobs
    assert seen[0]["colour"] == "red"


# ---------------------------------------------------------------- outbound, stored


@settings(max_examples=60, deadline=None)
@given(st.lists(attachments(), max_size=3).map(tuple))
def test_outbound_messages_round_trip_with_their_attachments(files: tuple[Attachment, ...]) -> None:
    message = OutboundMessage(
        ticket_id="t1",
        ticket_number=1,
        subject="S",
        body="B",
        comment_id="c1",
        author_name="Al",
        to=(),
        sent_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        attachments=files,
    )
    data = serialize.to_data(message)
    assert ("attachments" in data) is bool(files)  # none: the stored form of before
    assert serialize.loads(OutboundMessage, serialize.dumps(message)) == message


def test_an_sqlite_outbox_keeps_the_attachments_of_a_reply(tmp_path: Path) -> None:
    channel = RecordingChannel("email")
    with Helpdesk(f"sqlite:///{tmp_path}/desk.db", channels=[channel], entry_points=False) as desk:
        desk.add_group("l1", "Desk")
        desk.add_agent("agent-1", "Al", groups=["l1"])
        ticket = desk.open_ticket(AGENT, requester="ann@acme.example", subject="S")
        desk.reply(ticket, AGENT, "see attached", attachments=[_file("a.pdf", b"A")])
        desk.deliver_pending()
        (delivery,) = desk.deliveries()  # read back from the SQLite outbox
        (attachment,) = delivery.message.attachments
        assert desk.attachment_bytes(ticket, attachment.id) == b"A"
        assert channel.messages[-1].attachments == (attachment,)


def test_white_space_and_dots_are_trimmed_until_none_is_left_at_the_end() -> None:
    assert safe_filename("0\xa0.") == "0"  # found by Hypothesis: a no-break space before a dot
    assert safe_filename("report . .\u2003") == "report"
