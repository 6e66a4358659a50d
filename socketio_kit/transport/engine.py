"""The kit's Engine.IO server: sticky session ids and the WebSocket data plane.

python-engineio gives every WebSocket client a writer greenlet fed by a queue,
plus a greenlet per ping, and frames (and, if the client offered it,
compresses) every packet once per recipient; the session also keeps the whole
upgrade request alive, since its reader is the request's greenlet. Here a
WebSocket session has one short greenlet, its reader, on its own descriptor,
and the request that brought it ends; packets are framed once and queued on the
connection (socketio_kit/transport/connection.py); one loop pings every session. Long-polling
sessions keep python-engineio's own path. bench/results/memory-breakdown.md
has what each of these saves.
"""
import time
from dataclasses import dataclass
from typing import Optional

import engineio
from engineio import packet
from engineio.socket import Socket

from socketio_kit.observability.metrics import NULL_METRICS
from socketio_kit.policy.limits import BoundedPollingQueue
from socketio_kit.transport.connection import Flusher, WebSocket
from socketio_kit.transport.greenio import Green
from socketio_kit.transport.websocket import HandshakeError, handshake_response

# How often the ping loop looks for sessions whose ping is due.
PING_TICK = 0.5
# What a client may send once on WebSocket, and how many pongs to no ping.
ALLOWED_ON_WEBSOCKET = (packet.MESSAGE, packet.PONG, packet.CLOSE)
UNASKED_PONGS = 5
# What a session's environ keeps once its request is over (see slim_environ).
ENVIRON_TYPES = (str, int, float, bool, tuple)
# python-engineio's refusals of a new session, as socketio_connect_refused reasons.
REFUSED = {'bad-origin': 'origin', 'bad-version': 'protocol'}


class Handled:
    """Returned once a WebSocket connection is over: the socket belongs to the
    WebSocket, so the WSGI server must not write a response (see socketio_kit.wsgi)."""

    def __repr__(self):
        return 'HANDLED'


HANDLED = Handled()


def slim_environ(environ: dict) -> dict:
    """The request's plain values (headers, addresses, query string), without
    the objects (input stream, socket) that would keep the request alive for
    the session's lifetime. python-socketio keeps this for `get_environ()`."""
    return {k: v for k, v in environ.items() if isinstance(v, ENVIRON_TYPES)}


class DrainedQueue:
    """The packet queue of a session that moved to WebSocket: nothing goes
    through it any more, so one shared, always-empty object replaces the
    queue, event and deques python-engineio gives every session."""

    def __init__(self, empty_exception):
        self.empty_exception = empty_exception

    def put(self, item):
        pass

    def get(self, block=True, timeout=None):
        raise self.empty_exception()

    def empty(self) -> bool:
        return True

    def task_done(self):
        pass

    def join(self):
        pass


@dataclass(frozen=True)
class DataPlane:
    """What the WebSocket transport of one instance needs."""
    green: Green
    flusher: Flusher
    compression: bool
    compression_threshold: int
    max_message: int
    max_client_buffer: int
    max_websockets: int


class KitSocket(BoundedPollingQueue, Socket):
    """An Engine.IO session; once on WebSocket, packets go straight to it
    (while polling, what waits for it is bounded: socketio_kit/policy/limits.py)."""
    ws: Optional[WebSocket] = None          # once upgraded
    pending_ws: Optional[WebSocket] = None  # from the 101 on
    ping_due = 0.0

    def send(self, pkt):
        ws = self.ws
        if ws is None:  # long-polling, or still upgrading
            return super().send(pkt)
        if not self.closed:
            ws.send(pkt.encode())

    def schedule_ping(self):
        # The server's ping loop sends it (see KitEngineServer._ping_loop),
        # rather than a sleeping greenlet per session.
        if self.last_ping:
            self.last_ping = None
            self.ping_due = time.monotonic() + self.server.ping_interval

    def close(self, wait=True, abort=False, reason=None):
        # Never wait for the queue to drain: a polling client that stops
        # polling would hold the calling greenlet (and its request) forever.
        super().close(wait=False, abort=abort, reason=reason)
        # A closed session leaves the table at once, however it was closed (a
        # full polling queue, a ping timeout found on send): its next request
        # is then an unknown session, a plain 400, where python-engineio would
        # raise KeyError('Session is disconnected') on it until its service
        # task swept the table.
        if self.closed and self.server.sockets.get(self.sid) is self:
            del self.server.sockets[self.sid]
        ws = self.ws or self.pending_ws
        if ws is not None and self.ws is None:  # closed mid-upgrade
            ws.abort('session closed during the upgrade')
        elif ws is not None:
            if abort:
                ws.abort(str(reason or 'closed'))
            else:
                ws.close()

    def _upgrade_websocket(self, environ, start_response):
        if self.upgraded:
            raise OSError('Socket has been upgraded already')
        server: KitEngineServer = self.server
        plane = server.plane
        try:
            if server.websockets >= plane.max_websockets:
                server.metrics.connect_refused('limit')
                raise HandshakeError('WORKER_CONNECTIONS WebSocket sessions '
                                     'reached on this instance')
            response, deflate = handshake_response(environ, plane.compression)
        except HandshakeError as exc:
            if not self.connected:
                self.close(abort=True)
            return server._bad_request(str(exc))
        server.websockets += 1  # before anything can yield
        sock = plane.green.adopt(environ['gunicorn.socket'])
        # A live client sends at least a pong every PING_INTERVAL: silence
        # (or a send blocked) that long means the session is dead.
        sock.settimeout(server.ping_interval + server.ping_timeout)
        ws = WebSocket(sock, plane.green, plane.flusher,
                       max_message=plane.max_message,
                       max_buffer=plane.max_client_buffer, deflate=deflate)
        self.pending_ws = ws  # closed with the session, even mid-upgrade
        plane.green.spawn(self._run, ws, response)
        return HANDLED

    def _run(self, ws: WebSocket, response: bytes):
        """The session's reader greenlet, for as long as the client stays."""
        try:
            ws.sock.sendall(response)
            self._serve(ws)
        except OSError:
            pass
        finally:
            ws.finish()
            ws.sock.close()
            self.server.websockets -= 1
            if self.closed:
                self.server.sockets.pop(self.sid, None)

    def _serve(self, ws: WebSocket):
        if self.connected and not self._probe(ws):
            return
        self.connected = True
        # What was queued for polling or during the upgrade goes first.
        empty = self.server.get_queue_empty_exception()
        while not self.queue.empty():
            try:
                pkt = self.queue.get(block=False)
            except empty:
                break
            if pkt is not None:
                ws.send(pkt.encode())
        self.upgraded, self.upgrading = True, False
        self.ws = ws
        self.queue = self.server.drained_queue
        unasked_pongs = 0
        while not self.closed:
            data = ws.receive()
            if data is None:
                break
            try:
                pkt = packet.Packet(encoded_packet=data)
            except Exception:  # malformed packet: end the session, quietly
                break
            # On WebSocket a client sends messages, a pong per ping and a
            # close; anything else, or pongs nobody asked for, is a client
            # spending this instance's CPU, not using it.
            if pkt.packet_type == packet.PONG and self.last_ping is None:
                unasked_pongs += 1
            if pkt.packet_type not in ALLOWED_ON_WEBSOCKET or \
                    unasked_pongs > UNASKED_PONGS:
                ws.close_reason = 'Engine.IO packets a client does not send'
                break
            try:
                self.receive(pkt)
            except Exception:  # the session is closed or the packet bad
                break
        self.close(abort=True, reason=ws.close_reason
                   or self.server.reason.TRANSPORT_CLOSE)

    def _probe(self, ws: WebSocket) -> bool:
        """The polling-to-WebSocket upgrade: 2probe / 3probe, then 5."""
        self.upgrading = True
        try:
            pkt = packet.Packet(encoded_packet=ws.receive())
            if pkt.packet_type != packet.PING or pkt.data != 'probe':
                return False
            ws.send(packet.Packet(packet.PONG, data='probe').encode())
            self.queue.put(packet.Packet(packet.NOOP))  # ends the pending poll
            pkt = packet.Packet(encoded_packet=ws.receive())
            return pkt.packet_type == packet.UPGRADE
        except Exception:
            return False
        finally:
            self.upgrading = False


class KitEngineServer(engineio.Server):
    """Engine.IO server with instance-prefixed sids and the data plane above.

    nginx reads the prefix of the `sid` query argument and sends every request
    of a session to the instance that created it (nginx/nginx.conf.template).
    """
    instance_name = 'app'
    plane: Optional[DataPlane] = None
    _pinger = None
    websockets = 0  # live WebSocket sessions
    metrics = NULL_METRICS  # observability.metrics.Metrics once socketio_kit.wsgi wires it

    def use(self, instance_name: str, plane: DataPlane):
        self.instance_name, self.plane = instance_name, plane
        self.drained_queue = DrainedQueue(self.get_queue_empty_exception())

    def _log_error_once(self, message, message_key):
        if message_key in REFUSED:
            self.metrics.connect_refused(REFUSED[message_key])
        # socketio_kit.server.OriginPolicy logs a refused origin itself, once, with the
        # allow-list; python-engineio's ERROR line would say it a second time.
        if message_key != 'bad-origin':
            super()._log_error_once(message, message_key)

    def generate_id(self):
        return f'{self.instance_name}.{super().generate_id()}'

    def _ping_loop(self):
        for _ in iter(int, 1):  # runs as long as the worker
            self.sleep(PING_TICK)
            now = time.monotonic()
            for sock in list(self.sockets.values()):
                due = sock.ping_due
                if due and due <= now and not sock.closing and not sock.closed:
                    sock.ping_due = 0.0
                    sock.last_ping = time.time()
                    sock.send(packet.Packet(packet.PING))

    def _handle_connect(self, environ, start_response, transport,
                        jsonp_index=None):
        # python-engineio's own, with the kit's socket class and ping loop.
        if self.start_service_task:
            self.start_service_task = False
            self.service_task_handle = self.start_background_task(
                self._service_task)
            self._pinger = self.start_background_task(self._ping_loop)
        sid = self.generate_id()
        sock = KitSocket(self, sid)
        self.sockets[sid] = sock
        sock.send(packet.Packet(packet.OPEN, {
            'sid': sid,
            'upgrades': self._upgrades(sid, transport),
            'pingTimeout': int(self.ping_timeout * 1000),
            'pingInterval': int(
                self.ping_interval + self.ping_interval_grace_period) * 1000,
            'maxPayload': self.max_http_buffer_size,
        }))
        ret = self._trigger_event('connect', sid, slim_environ(environ),
                                  run_async=False)
        if ret is not None and ret is not True:
            del self.sockets[sid]
            return self._unauthorized(ret or None)
        sock.schedule_ping()
        if transport == 'websocket':
            ret = sock.handle_get_request(environ, start_response)
            if sock.closed:
                self.sockets.pop(sid, None)
            return ret
        sock.connected = True
        try:
            return self._ok(sock.poll(), jsonp_index=jsonp_index)
        except engineio.exceptions.QueueEmpty:
            return self._bad_request()
