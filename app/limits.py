"""Per-client limits: token buckets on events and bytes, the rooms a client
joined, a bound on what waits for a long-polling client, and the size cap on
adapter messages.

A client's state lives on its Engine.IO session object (app/engine.py's
KitSocket), so it goes away with the session and costs nothing to clean up.
"""
import logging
import pickle
import time
import weakref
from typing import Callable, Optional, Set

from app.config_security import Security

log = logging.getLogger('app.limits')

# A polling client that never polls gets at most this many packets queued,
# whatever their size (MAX_CLIENT_BUFFER_BYTES bounds the bytes).
MAX_QUEUED_PACKETS = 10_000


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up."""
    __slots__ = ('rate', 'burst', 'tokens', 'stamp')

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = float(rate), float(burst)
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self, amount: float = 1.0) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) *
                          self.rate)
        self.stamp = now
        if self.tokens >= amount:
            self.tokens -= amount
            return True
        return False


class SharedBucket(TokenBucket):
    """A TokenBucket that every connection from one address holds."""
    __slots__ = ('__weakref__',)


class AddressBudgets:
    """One bytes bucket per client address on this instance
    (RATE_ADDRESS_BYTES_PER_SECOND, 0: off), shared by all the connections
    from that address: eight connections from one address get one
    address's bandwidth into the rooms, not eight clients' worth. An entry
    lives as long as a connection from its address does (weak references),
    so the table never outgrows the connections."""

    def __init__(self, security: Security):
        self.rate = security.rate_address_bytes_per_second
        # Burst: at least what one client may burst, so one full-size
        # message from a lone client always fits.
        self.burst = max(self.rate, security.rate_bytes_burst)
        self.buckets = weakref.WeakValueDictionary()

    def bucket(self, address: str) -> Optional[SharedBucket]:
        if not self.rate:
            return None
        bucket = self.buckets.get(address)
        if bucket is None:
            bucket = self.buckets[address] = SharedBucket(self.rate, self.burst)
        return bucket


class ClientState:
    """What the limits remember about one connected client."""
    __slots__ = ('events', 'bytes', 'address_bytes', 'strikes', 'rooms',
                 'bytes_ok', 'claims')

    def __init__(self, security: Security,
                 address_bytes: Optional[SharedBucket] = None):
        self.events = TokenBucket(security.rate_events_per_second,
                                  security.rate_events_burst)
        self.bytes = TokenBucket(security.rate_bytes_per_second,
                                 security.rate_bytes_burst)
        self.address_bytes = address_bytes
        # Refused events drain this bucket; once it is empty the abuse is
        # sustained (about ten seconds of refusals) and the client is dropped.
        after = security.rate_disconnect_after
        self.strikes = TokenBucket(after / 10.0, after)
        self.rooms: Set[str] = set()
        self.bytes_ok = True     # the current message fit the bytes bucket
        self.claims: Optional[dict] = None


    def take_bytes(self, amount: int) -> bool:
        """Whether `amount` bytes fit this client's and its address's budget."""
        return self.bytes.take(amount) and (
            self.address_bytes is None or self.address_bytes.take(amount))


def client_state(sock, security: Security, address_bytes=None) -> ClientState:
    """The state of the client behind an Engine.IO session, made on first use
    (address_bytes: a callable giving its address's shared bucket)."""
    state = getattr(sock, 'kit_state', None)
    if state is None:
        state = sock.kit_state = ClientState(
            security, address_bytes() if address_bytes else None)
    return state


def packet_size(pkt) -> int:
    data = pkt.data
    if isinstance(data, (str, bytes)):
        return len(data) + 8
    return 64


class BoundedPollingQueue:
    """Mixin for the Engine.IO session: what waits for a long-polling client
    is bounded like a WebSocket client's send buffer (MAX_CLIENT_BUFFER_BYTES,
    and MAX_QUEUED_PACKETS). A client that stops polling is disconnected, as a
    WebSocket client that stops reading is (app/connection.py)."""
    queued_bytes = 0
    queued_packets = 0

    def send(self, pkt):
        if getattr(self, 'ws', None) is None and not self.closed:
            self.queued_bytes += packet_size(pkt)
            self.queued_packets += 1
            limit = self.server.plane.max_client_buffer
            if self.queued_bytes > limit or \
                    self.queued_packets > MAX_QUEUED_PACKETS:
                self.queued_bytes = self.queued_packets = 0
                log.warning('disconnected long-polling client %s: more than '
                            'MAX_CLIENT_BUFFER_BYTES waiting for it', self.sid)
                self.close(wait=False, abort=True,
                           reason=self.server.reason.TRANSPORT_ERROR)
                return None
        return super().send(pkt)

    def poll(self):
        packets = super().poll()
        self.queued_bytes = self.queued_packets = 0
        return packets


class MessageTooLarge(ValueError):
    """An adapter message over ADAPTER_MAX_MESSAGE_BYTES (it is not sent)."""


def cap_publish(manager, max_bytes: int,
                serialize: Optional[Callable[[object], object]] = None):
    """Refuse adapter messages larger than max_bytes at publish time.

    Wraps the manager's `_publish` (python-socketio's pub/sub managers, and
    any manager that publishes through that method), so the cap holds
    whatever carries the messages: Redis never has to hold, or drop a
    subscriber over, one huge message. Raises MessageTooLarge, which the
    event handler turns into an error ack.
    """
    publish = manager._publish
    if serialize is None:  # what python-socketio's managers publish with
        json_module = getattr(manager, 'json', None)
        serialize = json_module.dumps if json_module else pickle.dumps

    def capped(data):
        size = len(serialize(data))
        if size > max_bytes:
            raise MessageTooLarge(f'adapter message of {size} bytes is over '
                                  f'ADAPTER_MAX_MESSAGE_BYTES={max_bytes}')
        return publish(data)

    manager._publish = capped
    return manager
