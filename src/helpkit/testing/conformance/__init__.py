"""The store conformance suite: what every :class:`helpkit.ports.Store` must do.

Subclass :class:`StoreConformance` in your test suite and supply one fixture, ``make_store``,
returning a zero-argument callable that creates a fresh, empty store::

    import pytest
    from helpkit.testing.conformance import StoreConformance

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def make_store(self, tmp_path):
            counter = itertools.count()
            return lambda: MyStore(tmp_path / f"desk{next(counter)}.db")

Stores that declare :attr:`helpkit.ports.Capability.PERSISTENT` also supply a
``reopen_store`` fixture returning a callable ``(closed_store) -> Store`` that opens the same
data again; the persistence tests are skipped (with the reason shown) for stores that do not
declare the capability, as the change feed, outbox, timer state, due claim, feed wake-up,
inbox, routing, recent ticket, redaction, purge, knowledge base, new contact and joint read
cases are for stores without
:attr:`~helpkit.ports.Capability.CHANGE_FEED`, :attr:`~helpkit.ports.Capability.OUTBOX`,
:attr:`~helpkit.ports.Capability.TIMER_STATE`, :attr:`~helpkit.ports.Capability.TIMER_ROWS`,
:attr:`~helpkit.ports.Capability.DUE_CLAIMS`,
:attr:`~helpkit.ports.Capability.FEED_WAKEUP`, :attr:`~helpkit.ports.Capability.INBOX`,
:attr:`~helpkit.ports.Capability.ROUTING`, :attr:`~helpkit.ports.Capability.RECENT_TICKETS`,
:attr:`~helpkit.ports.Capability.REDACTION`, :attr:`~helpkit.ports.Capability.PURGE`,
:attr:`~helpkit.ports.Capability.KNOWLEDGE`, :attr:`~helpkit.ports.Capability.NEW_CONTACTS`
or :attr:`~helpkit.ports.Capability.PARTY_READS` (the people cases' joint read).
Stores that declare :attr:`~helpkit.ports.Capability.MULTIPROCESS` may also supply
``reopen_elsewhere``, a fixture returning a callable ``(store) -> opener``, where ``opener``
is a picklable zero-argument callable opening the same data in another process: the inbox
and routing cases then race processes to ingest one message or to move one routing version
(skipped, with the reason shown, without it).

Besides example-based tests, the suite runs a Hypothesis state machine that drives the store
under test and a :class:`~helpkit.stores.memory.MemoryStore` side by side with random
commands built by :mod:`helpkit.lifecycle`, and checks after every step that both give the
same answers. This package needs pytest and Hypothesis (the ``testing`` extra).

Blob stores (:class:`helpkit.ports.BlobStore`) have their own suite, :class:`BlobStoreCases`
(see :mod:`helpkit.testing.conformance.blobs`).
"""

from __future__ import annotations

from helpkit.testing.conformance.base import SuiteBase
from helpkit.testing.conformance.blobs import (
    BlobStoreCases,
    BlobStoreFactory,
    BlobStoreOpener,
    CorruptBlob,
)
from helpkit.testing.conformance.commits import CommitCases
from helpkit.testing.conformance.due_claims import DueClaimCases
from helpkit.testing.conformance.feed import FeedCases
from helpkit.testing.conformance.group_commit import GroupCommitCases
from helpkit.testing.conformance.helpers import (
    BASE_TIME,
    ReopenStore,
    StoreFactory,
    change_of,
    with_schedule,
)
from helpkit.testing.conformance.helpers import forged as forged
from helpkit.testing.conformance.inbox import InboxCases, ReopenElsewhere
from helpkit.testing.conformance.knowledge import KnowledgeCases
from helpkit.testing.conformance.new_contacts import NewContactCases
from helpkit.testing.conformance.numbering import NumberingCases
from helpkit.testing.conformance.outbox import OutboxCases
from helpkit.testing.conformance.people import PeopleCases
from helpkit.testing.conformance.persistence import PersistenceCases
from helpkit.testing.conformance.privacy import PurgeCases, RedactionCases
from helpkit.testing.conformance.queries import QueryCases
from helpkit.testing.conformance.recent import RecentTicketCases
from helpkit.testing.conformance.requester_counts import RequesterCountCases
from helpkit.testing.conformance.routing import RoutingCases
from helpkit.testing.conformance.stateful import SideBySideCases, StoreComparison
from helpkit.testing.conformance.timer_rows import TimerRowCases
from helpkit.testing.conformance.timer_states import TimerStateCases
from helpkit.testing.conformance.wakeup import WakeupCases

__all__ = [
    "BASE_TIME",
    "BlobStoreCases",
    "BlobStoreFactory",
    "BlobStoreOpener",
    "CorruptBlob",
    "ReopenElsewhere",
    "ReopenStore",
    "StoreComparison",
    "StoreConformance",
    "StoreFactory",
    "change_of",
    "with_schedule",
]


# One mixin per concern, each a module of this package. pytest collects the tests of base
# classes in reverse MRO order, so the last base's tests come first: listed this way, the
# suite runs protocol, commit, numbering, query, people, persistence, side-by-side, change
# feed, outbox, timer state, timer row, due claim, feed wake-up, inbox, routing, recent ticket,
# redaction, purge, knowledge base, new contact, requester count and group commit cases in
# that order.
class StoreConformance(
    GroupCommitCases,
    RequesterCountCases,
    NewContactCases,
    KnowledgeCases,
    PurgeCases,
    RedactionCases,
    RecentTicketCases,
    RoutingCases,
    InboxCases,
    WakeupCases,
    DueClaimCases,
    TimerRowCases,
    TimerStateCases,
    OutboxCases,
    FeedCases,
    SideBySideCases,
    PersistenceCases,
    PeopleCases,
    QueryCases,
    NumberingCases,
    CommitCases,
    SuiteBase,
):
    """The behaviour every store must show. Subclass it as ``TestXxx`` and supply fixtures.

    Required: ``make_store`` (a fixture returning a callable that creates a fresh, empty
    store each call). For persistent stores: ``reopen_store`` (a fixture returning a callable
    that, given a store the suite has closed, opens the same data again). For stores shared
    between processes: ``reopen_elsewhere`` (see :class:`ReopenElsewhere`).

    Class attributes to adjust: ``thread_safe`` (set False if a store object must not be
    shared between threads; the thread tests are then skipped) and ``stateful_settings``
    (Hypothesis settings of the side-by-side state machine).
    """
