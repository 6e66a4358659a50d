"""What a recovering session gets back: stream offsets, the entries after
one that were addressed to the session, and whether the stream still holds
all of them (retention)."""
import json

import redis

from socketio_kit.cluster.dedupe import SeenEmits
from socketio_kit.cluster.entries import after, parse_offset
from socketio_kit.policy.limits import TokenBucket

PAGE = 100            # XRANGE entries per round trip; other clients run between pages
MAX_PAGES = 2000      # a replay reads at most this many pages
# Bytes of stream the recoveries of one client address may make an instance
# read (and decode), a token bucket per address: a recovery is a 200-byte
# CONNECT, its replay can be megabytes of work. The burst covers an office
# behind one NAT whose hundred clients all recover after their instance died.
SCAN_BYTES_PER_SECOND = 20_000_000
SCAN_BYTES_BURST = 200_000_000
MAX_TRACKED_ADDRESSES = 10_000


class TooMuch(Exception):
    """A replay past its bounds: the client gets a new session instead."""


class ScanBudget:
    """The SCAN_BYTES token bucket of each client address on this instance;
    idle addresses (bucket full again) are forgotten past
    MAX_TRACKED_ADDRESSES."""

    def __init__(self):
        self.buckets = {}

    def bucket(self, address: str) -> TokenBucket:
        bucket = self.buckets.get(address)
        if bucket is None:
            if len(self.buckets) >= MAX_TRACKED_ADDRESSES:
                for known, full in list(self.buckets.items()):
                    full.take(0)                    # refilled to now
                    if full.tokens >= full.burst:
                        del self.buckets[known]
                if len(self.buckets) >= MAX_TRACKED_ADDRESSES:
                    self.buckets.clear()
            bucket = self.buckets[address] = TokenBucket(SCAN_BYTES_PER_SECOND,
                                                         SCAN_BYTES_BURST)
        return bucket


def addressed(msg, namespace, sid, rooms) -> bool:
    """Whether a stream entry was an event for this session."""
    if msg.get('method') != 'emit' or msg.get('callback') is not None or \
            (msg.get('namespace') or '/') != namespace:
        return False
    skip = msg.get('skip_sid')
    if skip == sid or (isinstance(skip, list) and sid in skip):
        return False
    room = msg.get('room')
    if room is None:
        return True
    if isinstance(room, list):
        return any(r in rooms for r in room)
    return room in rooms


def retained(client, stream: str, offset: str) -> bool:
    """Whether every entry after offset is still in the stream."""
    try:
        info = client.xinfo_stream(stream)
    except redis.ResponseError:     # no stream: nothing after anything
        return True
    deleted = info.get('max-deleted-entry-id')
    if isinstance(deleted, bytes):
        deleted = deleted.decode()
    if parse_offset(deleted) is not None:   # Redis >= 7.0 says exactly
        return not after(deleted, offset)
    first = info.get('first-entry')
    return first is None or not after(first[0].decode(), offset)


def missed(client, stream: str, namespace: str, sid: str, rooms, offset: str,
           max_bytes: int = 2 ** 62, scan: TokenBucket = None, pause=None):
    """[(offset, message)] of the entries after offset addressed to the
    session sid in rooms, in stream order. Raises TooMuch past `max_bytes`
    of them (more than the client may have waiting) or once `scan`, its
    address's bucket, cannot pay for the bytes read; `pause()` runs between
    pages, so the other clients are served meanwhile."""
    rooms = set(rooms) | {sid}
    cursor, out, kept, seen = '(' + offset, [], 0, SeenEmits()
    for _ in range(MAX_PAGES):
        entries = client.xrange(stream, min=cursor, max='+', count=PAGE)
        for entry_id, fields in entries:
            cursor = '(' + entry_id.decode()
            raw = fields[b'm']
            if scan is not None and not scan.take(len(raw)):
                raise TooMuch('its address had more of the stream read than '
                              'replay.SCAN_BYTES_PER_SECOND allows')
            msg = json.loads(raw)
            if addressed(msg, namespace, sid, rooms) and seen.first(msg):
                kept += len(raw)
                if kept > max_bytes:
                    raise TooMuch(f'it missed more than MAX_CLIENT_BUFFER_BYTES='
                                  f'{max_bytes}')
                out.append((entry_id.decode(), msg))
        if len(entries) < PAGE:
            break
        if pause is not None:
            pause()
    return out
