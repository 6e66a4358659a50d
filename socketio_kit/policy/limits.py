"""Per-client limits: token buckets on events and bytes, a bound on what
waits for a long-polling client, and the size cap on adapter messages.

A client's state lives on its Engine.IO session object (socketio_kit/transport/engine.py's
KitSocket), so it goes away with the session and costs nothing to clean up.
"""
import logging
import time
import weakref
from typing import Optional

from socketio_kit.config.security import Security

log = logging.getLogger('socketio_kit.policy.limits')

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


class AddressBudget:
    """The buckets every connection from one client address shares on this
    instance: bytes and events (None: that limit is off)."""
    __slots__ = ('bytes', 'events', '__weakref__')

    def __init__(self, bytes_bucket: Optional[TokenBucket],
                 events_bucket: Optional[TokenBucket]):
        self.bytes, self.events = bytes_bucket, events_bucket


class AddressBudgets:
    """One AddressBudget per client address on this instance
    (RATE_ADDRESS_BYTES_PER_SECOND, RATE_ADDRESS_EVENTS_PER_SECOND; 0: off),
    shared by all the connections from that address: six hundred connections
    from one address get one address's bandwidth and events, not six hundred
    clients' worth. An entry lives as long as a connection from its address
    does (weak references), so the table never outgrows the connections."""

    def __init__(self, security: Security):
        self.bytes_rate = security.rate_address_bytes_per_second
        self.events_rate = security.rate_address_events_per_second
        # Bursts: at least what one client may burst, so a lone client is
        # never limited by its address first.
        self.bytes_burst = max(self.bytes_rate, security.rate_bytes_burst)
        self.events_burst = max(2 * self.events_rate, security.rate_events_burst)
        self.budgets = weakref.WeakValueDictionary()

    def budget(self, address: str) -> Optional[AddressBudget]:
        if not (self.bytes_rate or self.events_rate):
            return None
        budget = self.budgets.get(address)
        if budget is None:
            budget = self.budgets[address] = AddressBudget(
                TokenBucket(self.bytes_rate, self.bytes_burst) if self.bytes_rate else None,
                TokenBucket(self.events_rate, self.events_burst) if self.events_rate else None)
        return budget


class ClientState:
    """What the limits remember about one connected client."""
    __slots__ = ('events', 'bytes', 'address', 'strikes', 'binary_bytes',
                 'bytes_ok', 'claims')

    def __init__(self, security: Security, address: Optional[AddressBudget] = None):
        self.events = TokenBucket(security.rate_events_per_second,
                                  security.rate_events_burst)
        self.bytes = TokenBucket(security.rate_bytes_per_second,
                                 security.rate_bytes_burst)
        self.address = address
        # Refused events drain this bucket; once it is empty the abuse is
        # sustained (about ten seconds of refusals) and the client is dropped.
        after = security.rate_disconnect_after
        self.strikes = TokenBucket(after / 10.0, after)
        self.binary_bytes = 0    # a binary packet's header and attachments so far
        self.bytes_ok = True     # the current message fit the bytes bucket
        self.claims: Optional[dict] = None

    def take_bytes(self, amount: int) -> bool:
        """Whether `amount` bytes fit this client's and its address's budget."""
        shared = self.address and self.address.bytes
        return self.bytes.take(amount) and (shared is None or shared.take(amount))

    def take_event(self) -> bool:
        """Whether one more event (any Socket.IO packet) fits this client's
        and its address's budget."""
        shared = self.address and self.address.events
        return self.events.take() and (shared is None or shared.take())


def client_state(sock, security: Security, address=None) -> ClientState:
    """The state of the client behind an Engine.IO session, made on first use
    (address: a callable giving its address's AddressBudget)."""
    state = getattr(sock, 'kit_state', None)
    if state is None:
        state = sock.kit_state = ClientState(security, address() if address else None)
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
    WebSocket client that stops reading is (socketio_kit/transport/connection.py);
    closing the session also takes it out of the server's table (KitSocket.close),
    so the client's next request is refused as an unknown session."""
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
