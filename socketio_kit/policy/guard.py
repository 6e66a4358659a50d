"""Input checks at the Socket.IO layer, before any handler runs.

`GuardedServer` is a mixin for python-socketio's Server (socketio_kit/server.py):
- a packet that is not strict JSON (socketio_kit/policy/strictjson.py)
  disconnects its client, as Node's server does, with one log line and no
  traceback;
- binary attachments are allowed, as in python-socketio, but a packet's
  header and attachments together count against MAX_PAYLOAD_BYTES (each
  attachment at least ATTACHMENT_OVERHEAD bytes, so empty ones cannot pile
  up); past it the client is disconnected;
- every malformed event gets an error ack `{"ok": false, "error": ...}`:
  a non-string or reserved event name; with the strict contract
  (`strict_events`, the demo's) also more than one argument, a payload that
  is not an object, and any binary packet (refused at its header);
- every packet goes through the client's token buckets on bytes and events,
  and its address's (socketio_kit/policy/limits.py): an excess event gets an
  error ack, other excess packets
  (CONNECT, ACK, ...) are ignored; sustained abuse disconnects the client.
"""
import logging

from socketio import packet

from socketio_kit.policy.binding import client_address
from socketio_kit.policy.limits import client_state

log = logging.getLogger('socketio_kit.policy.guard')

# Names a client may not send: python-socketio and socket.io give them a
# meaning of their own (Node's server refuses them too).
RESERVED_EVENTS = frozenset((
    'connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener',
    'removeListener', '*'))
BINARY = (str(packet.BINARY_EVENT), str(packet.BINARY_ACK))
# What an attachment costs at least, towards MAX_PAYLOAD_BYTES, whatever its
# size: a packet announcing a million empty attachments is refused long
# before it holds a million objects.
ATTACHMENT_OVERHEAD = 6


def event_error(data, strict: bool = False):
    """Why an EVENT packet's data is malformed, or None. `strict`: the demo
    contract's shape, ["name", {payload}] and nothing else."""
    if not isinstance(data, list) or not data:
        return 'an event is ["name", ...arguments]'
    name = data[0]
    if not isinstance(name, str):
        return 'event name must be a string'
    if name in RESERVED_EVENTS:
        return f'event name {name[:40]!r} is reserved'
    if not strict:
        return None
    if len(data) > 2:
        return f'expected one payload object, got {len(data) - 1} arguments'
    if len(data) == 2 and not isinstance(data[1], dict):
        return 'payload must be an object'
    return None


class GuardedServer:
    """Mixin for socketio.Server; `security` is the instance's Security."""
    security = None
    strict_events = False
    address_budgets = None  # socketio_kit.policy.limits.AddressBudgets, set with security
    refused = None  # counters by reason, for the /_kit namespace's stats

    def count(self, reason: str):
        if self.refused is None:
            self.refused = {}
        self.refused[reason] = self.refused.get(reason, 0) + 1

    def kit_state(self, eio_sid):
        sock = self.eio.sockets.get(eio_sid)
        if sock is None:
            return None
        budgets = self.address_budgets
        return client_state(sock, self.security, budgets and (lambda: budgets.budget(
            client_address(self.environ.get(eio_sid) or {}))))

    def state_of(self, sid, namespace='/'):
        """The limits state of a connected Socket.IO sid, or None."""
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace)
        return None if eio_sid is None else self.kit_state(eio_sid)

    def drop(self, eio_sid, why: str):
        """Disconnect a client for what it sent (one rate-limited line)."""
        self.count(why.split(':')[0])
        log.warning('disconnected client %s: %s', eio_sid, why)
        sock = self.eio.sockets.get(eio_sid)
        if sock is not None:
            ws = getattr(sock, 'ws', None)
            if ws is not None:  # what is queued (error acks) goes first
                ws.flush()
            self.eio.disconnect(eio_sid)

    def _handle_eio_message(self, eio_sid, data):
        state = self.kit_state(eio_sid)
        if state is None:
            return
        # An attachment: binary, or anything while a binary packet waits.
        attachment = isinstance(data, (bytes, bytearray)) or eio_sid in self._binary_packet
        if attachment or data[:1] in BINARY:
            why = self._binary_refusal(eio_sid, state, data, attachment)
            if why:
                return self.drop(eio_sid, why)
            if attachment:  # its packet's event was counted at its header
                state.bytes_ok = state.bytes_ok and state.take_bytes(len(data))
                return super()._handle_eio_message(eio_sid, data)
        state.bytes_ok = state.take_bytes(len(data))
        if data[:1] != str(packet.EVENT) and not (
                state.bytes_ok and state.take_event()):
            # CONNECT, DISCONNECT, ACK: no ack to refuse them with; ignored,
            # and counted towards sustained abuse like refused events.
            if not state.strikes.take():
                return self.drop(eio_sid, 'rate limit: sustained abuse')
            return None
        try:
            return super()._handle_eio_message(eio_sid, data)
        except (ValueError, RecursionError) as exc:  # deep nesting: the latter
            return self.drop(eio_sid, f'parse error: {type(exc).__name__}: '
                                      f'{str(exc)[:80]}')

    def _binary_refusal(self, eio_sid, state, data, attachment: bool):
        """Why a binary packet's header or attachment is refused, or None."""
        if self.strict_events:
            return 'binary packet: the contract has no binary events'
        if attachment and eio_sid not in self._binary_packet:
            return 'binary message without a binary packet header'
        if not attachment:
            state.binary_bytes = 0
        state.binary_bytes += len(data) + ATTACHMENT_OVERHEAD
        limit = self.eio.max_http_buffer_size
        if state.binary_bytes > limit:
            return (f'binary packet over MAX_PAYLOAD_BYTES={limit} with its '
                    f'attachments')
        return None

    def _handle_event(self, eio_sid, namespace, id, data):
        state = self.kit_state(eio_sid)
        if state is None:
            return
        error = event_error(data, self.strict_events)
        if not (state.bytes_ok and state.take_event()):  # malformed ones too
            error = ('rate limited: more than RATE_EVENTS_PER_SECOND events or '
                     'RATE_BYTES_PER_SECOND bytes, or this address past '
                     'RATE_ADDRESS_EVENTS_PER_SECOND or RATE_ADDRESS_BYTES_PER_SECOND')
            if not state.strikes.take():
                return self.drop(eio_sid, 'rate limit: sustained abuse')
        elif error:
            self.count('malformed event')
        if error is None:
            return super()._handle_event(eio_sid, namespace, id, data)
        if id is not None:
            self._send_packet(eio_sid, self.packet_class(
                packet.ACK, namespace=namespace or '/', id=id,
                data=[{'ok': False, 'error': error}]))
        return None
