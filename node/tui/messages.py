"""The messages that carry app state: workers post them, screens and the app handle them.

Each is a dataclass of plain values (see :mod:`node.tui.data`); none holds a widget.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from node.crypto.keys import KeyPair
from node.home import MemberEntry
from node.store.peers import Peer
from node.tui.data import CircleData, CircleItem, CircleSummary
from node.tui.proposal_data import ProposalData
from node.tui.session import Session


@dataclass
class Unlocked(Message):
    """A member key is open and the store is ready: the app shows the dashboard."""

    session: Session


@dataclass
class KeyOpened(Message):
    """A thread worker opened (or made) a member key."""

    member: MemberEntry
    key: KeyPair


@dataclass
class ActionFailed(Message):
    """A worker hit an error the user can act on; ``text`` says what to do."""

    text: str


@dataclass
class CirclesLoaded(Message):
    """The dashboard's fast part: the circle tree and the peers."""

    circles: list[CircleItem]
    peers: list[Peer]


@dataclass
class SummariesLoaded(Message):
    """The dashboard's slow part: circles' inboxes, decisions and open counts. On a big
    store the first load posts the circles done so far every so often (``of`` is how many
    there are in all); the last message has them all."""

    summaries: list[CircleSummary]
    of: int

    @property
    def complete(self) -> bool:
        return len(self.summaries) >= self.of


@dataclass
class CircleLoaded(Message):
    data: CircleData


@dataclass
class ProposalLoaded(Message):
    data: ProposalData
