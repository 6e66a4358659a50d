"""What the generator keeps per client and per sender, as plain dataclasses."""
from dataclasses import dataclass, field
from typing import Dict, Optional, Set

from loadtest.stats import Histogram, SeqTracker


@dataclass(slots=True, eq=False)
class ClientState:
    """One client's delivery bookkeeping and reconnect times (wall clock)."""
    sampled: bool = False       # latency is measured on this client
    trackers: Dict[bytes, SeqTracker] = field(default_factory=dict)  # per sender id
    joined: bool = False
    start_instance: Optional[str] = None   # where it was when the run started
    t_lost: Optional[float] = None
    lost_reason: Optional[str] = None
    t_back: Optional[float] = None         # welcome again after a loss
    t_recv_again: Optional[float] = None   # first broadcast after that
    new_instance: Optional[str] = None


@dataclass(eq=False)
class Sender:
    """A client that broadcasts, and what became of its broadcasts."""
    id: str
    client: object
    sent: int = 0
    unacked: Set[int] = field(default_factory=set)
    skipped: int = 0      # send times that found the client disconnected
    refused: int = 0      # acks with ok: false
    late: int = 0         # sends more than 1 s behind schedule
    ack: Histogram = field(default_factory=Histogram)

    def report(self) -> dict:
        return {'sent': self.sent, 'unacked': sorted(self.unacked),
                'skipped': self.skipped, 'refused': self.refused, 'late': self.late,
                'ack': self.ack.to_dict()}
