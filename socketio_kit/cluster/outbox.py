"""The outbox: stream entries that wait while Redis does not answer.

Bounded twice, by OUTBOX_MAX_MESSAGES and by OUTBOX_MAX_AGE seconds: past
either, the oldest entries are dropped, logged and counted, so an outage costs
bounded memory and the instance never replays stale news.
"""
import logging
import time
from collections import Counter, deque
from itertools import islice

from socketio_kit.observability.logs import fields

log = logging.getLogger('socketio_kit.cluster.outbox')


class Outbox:
    """A FIFO of serialized messages with a size and an age limit."""

    def __init__(self, max_messages: int, max_age: float):
        self.max_messages = max_messages
        self.max_age = max_age
        self.entries = deque()      # (seq, monotonic time, raw message)
        self.seq = 0
        self.stats = Counter()

    def __len__(self):
        return len(self.entries)

    def put(self, raw):
        self.seq += 1
        self.entries.append((self.seq, time.monotonic(), raw))
        self.stats['outbox_queued'] += 1
        if len(self.entries) > self.max_messages:
            self._drop(len(self.entries) - self.max_messages, 'OUTBOX_MAX_MESSAGES')

    def _drop(self, count, limit):
        for _ in range(count):
            self.entries.popleft()
        self.stats['outbox_dropped'] += count
        log.warning('outbox over %s: dropped the %d oldest messages '
                    '(%d dropped so far)', limit, count,
                    self.stats['outbox_dropped'],
                    extra=fields(event='outbox_overflow', reason=limit))

    def peek(self, count: int):
        """(last seq, raws): up to count of the oldest messages, after
        expiring the ones past the age limit."""
        horizon = time.monotonic() - self.max_age
        expired = 0
        for _, queued, _ in self.entries:
            if queued >= horizon:
                break
            expired += 1
        if expired:
            self._drop(expired, 'OUTBOX_MAX_AGE')
        batch = list(islice(self.entries, count))
        return (batch[-1][0] if batch else 0), [raw for _, _, raw in batch]

    def done(self, last_seq: int):
        """Every message up to last_seq is in the stream now (some may have
        been dropped meanwhile: the seq tells which are left)."""
        while self.entries and self.entries[0][0] <= last_seq:
            self.entries.popleft()
