"""Messages between parties and the coordinator, kept for inspection.

In simulation every protocol step is an explicit :class:`Message`, appended
to a :class:`Transcript`, so tests (and users) can check exactly what the
coordinator and each party received.
"""

from dataclasses import dataclass, field

COORDINATOR = "coordinator"
EVERYONE = "*"


@dataclass(frozen=True)
class Message:
    """One message of a protocol.

    Parameters
    ----------
    sender, recipient : str
        Party names, ``"coordinator"``, or ``"*"`` (published to everyone).
    kind : str
        What the message is in the protocol (e.g. ``"masked_input"``).
    payload : object
        What was sent (bytes, integers, arrays of ring elements).
    """

    sender: str
    recipient: str
    kind: str
    payload: object = None


@dataclass
class Transcript:
    """Every message of one aggregation, in order."""

    messages: list = field(default_factory=list)

    def send(self, sender, recipient, kind, payload=None):
        """Record a message and return its payload."""
        self.messages.append(Message(sender, recipient, kind, payload))
        return payload

    def seen_by(self, name):
        """The messages ``name`` received (addressed to it or published)."""
        return [m for m in self.messages if m.recipient in (name, EVERYONE)]

    def kinds(self):
        """The message kinds, in order of first appearance."""
        return list(dict.fromkeys(m.kind for m in self.messages))
