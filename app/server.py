"""The Socket.IO server of one instance and the demo contract it speaks.

Contract (documented in the README, used by the tests, the load test and the
browser page):
- on connect the server emits `welcome` {instance, sid, transport, session};
- `join` {room} acks {ok, room, instance};
- `leave` {room} acks {ok, room, instance};
- `broadcast` {room, data} delivers `message` {room, data, from} to every
  member of the room on every instance, exactly once, and acks {ok, ...};
- `remember` {value} keeps a short string in the client's session
  (app/remember.py) and acks {ok, instance};
- `whoami` acks {instance, sid, transport, remembered}.
Bad input gets an `{"ok": false, "error": ...}` ack, never an exception.
"""
import logging

import socketio
from socketio import packet

from app import logsafe, strictjson
from app.admin import register_admin
from app.auth import Authenticator, Unauthorized, is_sid_like
from app.binding import cookie_value
from app.config import Settings
from app.connection import Flusher
from app.engine import DataPlane, KitEngineServer
from app.greenio import Green
from app.guard import GuardedServer
from app.limits import AddressBudgets, MessageTooLarge
from app.logs import fields
from app.metrics import NULL_METRICS
from app.remember import register_remember, remembered

MAX_ROOM_LENGTH = 128

log = logging.getLogger('app')


class InstanceServer(GuardedServer, socketio.Server):
    """python-socketio Server on the kit's Engine.IO server (app/engine.py),
    with strict input and per-client limits (app/guard.py)."""

    # app.recovery.Recovery when RECOVERY_WINDOW > 0: the four hooks below.
    recovery = None

    def __init__(self, instance_name: str, plane: DataPlane, security=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.security = security
        self.address_budgets = AddressBudgets(security) if security else None
        self.eio.use(instance_name, plane)

    def _engineio_server_class(self):
        return KitEngineServer

    # app.metrics.Metrics once app.wsgi.create_app wires it.
    metrics = NULL_METRICS

    def _trigger_event(self, event, namespace, *args):
        """Every handler call passes here: count connects (a refusal by the
        connect handler is an `auth` refusal), disconnects and events."""
        metrics = self.metrics
        if event == 'disconnect':
            metrics.disconnected(args[-1] if len(args) > 1 else None)
        elif event != 'connect':
            metrics.event_received(event)
        try:
            result = super()._trigger_event(event, namespace, *args)
        except (socketio.exceptions.ConnectionRefusedError, ConnectionRefusedError) as exc:
            metrics.connect_refused('auth')
            log.warning('connection refused by the connect handler (a token or '
                        'credential check): %s', exc, extra=fields(
                            sid=args[0], event='connect_refused', reason='auth'))
            raise
        if event == 'connect' and result is False:
            metrics.connect_refused('auth')
        elif event == 'connect':
            metrics.connected()
        return result

    def _handle_connect(self, eio_sid, namespace, data):
        if self.recovery is None:
            return super()._handle_connect(eio_sid, namespace, data)
        data = self.recovery.before_connect(eio_sid, namespace or '/', data)
        try:
            if eio_sid not in self.environ:     # gone while its pid was checked
                return None
            return super()._handle_connect(eio_sid, namespace, data)
        finally:
            self.recovery.after_connect(eio_sid, namespace or '/')

    def save_session(self, sid, session, namespace=None):
        super().save_session(sid, session, namespace)
        if self.recovery is not None:  # into the client's recoverable record
            self.recovery.saved(sid, namespace or '/', session)

    def _send_packet(self, eio_sid, pkt):
        if self.recovery is not None and pkt.packet_type == packet.CONNECT:
            self.recovery.connect_reply(eio_sid, pkt)  # adds the pid
        return super()._send_packet(eio_sid, pkt)

    def _handle_disconnect(self, eio_sid, namespace, reason=None):
        if self.recovery is not None:
            self.recovery.closing(eio_sid, namespace or '/', reason)
        return super()._handle_disconnect(eio_sid, namespace, reason)


class OriginPolicy:
    """The CORS allow-list, as the callable Engine.IO checks every Origin with.

    Engine.IO answers a refused origin with 400 and no allow header. This also
    logs each refused origin once at WARNING, with the allow-list, because the
    first step in debugging a CORS error is seeing what the server refused.
    """

    def __init__(self, settings: Settings):
        self.instance = settings.instance_name
        self.allowed = frozenset(settings.cors_allowed_origins)
        self.refused = set()

    def __call__(self, origin, environ=None):
        if origin in self.allowed:
            return True
        if origin not in self.refused and len(self.refused) < 1000:
            self.refused.add(origin)
            log.warning('instance %s refused origin %r: not in '
                        'CORS_ALLOWED_ORIGINS=%s', self.instance, origin,
                        ','.join(sorted(self.allowed)),
                        extra=fields(event='connect_refused', reason='origin'))
        return False


def _room(data):
    if not isinstance(data, dict):
        return None, 'payload must be an object like {"room": "name"}'
    room = data.get('room')
    if not isinstance(room, str) or not 0 < len(room) <= MAX_ROOM_LENGTH:
        return None, f'room must be a string of 1-{MAX_ROOM_LENGTH} characters'
    if is_sid_like(room):
        return None, 'room names shaped like session ids are reserved'
    return room, None


def _join_error(state, room, security, auth):
    """Why this client may not join room (MAX_ROOMS_PER_CLIENT, the token's
    rooms claim), or None."""
    if state is None:
        return 'not connected'
    if room in state.rooms:
        return None
    if len(state.rooms) >= security.max_rooms_per_client:
        return (f'already in {security.max_rooms_per_client} rooms '
                f'(MAX_ROOMS_PER_CLIENT)')
    if not auth.may_join(state.claims, room):
        return f'not authorized to join {room!r}'
    return None


def _broadcast_error(sio, sid, room):
    """Only into rooms the sender is in (and so was authorized for)."""
    members = sio.manager.rooms.get('/', {}).get(room)
    if not members or sid not in members:
        return f'join {room!r} before broadcasting to it'
    return None


def _authenticate(sio, auth, sid, auth_data):
    """Verify the CONNECT's token (AUTH_MODE=jwt) and keep its claims;
    a refusal becomes the client's connect_error."""
    try:
        claims = auth.claims(auth_data)
    except Unauthorized as exc:
        sio.count(f'connect refused: {exc.why}')
        raise
    state = sio.state_of(sid)
    if state is not None:
        state.claims = claims


def drop_sessions(sio: socketio.Server):
    """Close every Engine.IO session's transport without a goodbye.

    Used when the instance is told to stop. Clients see a lost transport and
    reconnect at once, through nginx, to a live instance; a Socket.IO or
    Engine.IO "close" packet would instead tell them the server is done with
    them, and python-socketio clients would not come back.
    """
    eio = sio.eio
    for session in list(eio.sockets.values()):
        session.close(wait=False, abort=True,
                      reason=eio.reason.TRANSPORT_CLOSE)
    eio.sockets.clear()


def _data_plane(settings: Settings) -> DataPlane:
    green = Green(settings.worker_class)
    return DataPlane(
        green=green, flusher=Flusher(green),
        compression=settings.ws_compression,
        compression_threshold=settings.ws_compression_threshold,
        max_message=settings.protocol.max_payload_bytes,
        max_client_buffer=settings.max_client_buffer_bytes,
        max_websockets=settings.worker_connections)


def create_server(settings: Settings, client_manager=None) -> socketio.Server:
    """Build the Socket.IO server of one instance, with its event handlers."""
    cors = '*' if settings.cors_wildcard else OriginPolicy(settings)
    plane = _data_plane(settings)
    if client_manager is not None:
        client_manager.compression_threshold = plane.compression_threshold
    security = settings.security
    auth = Authenticator(security)
    sio = InstanceServer(
        settings.instance_name, plane, security,
        json=strictjson,
        async_mode=settings.worker_class,
        client_manager=client_manager,
        cors_allowed_origins=cors,
        cors_credentials=settings.cors_credentials,
        ping_interval=settings.protocol.ping_interval,
        ping_timeout=settings.protocol.ping_timeout,
        max_http_buffer_size=settings.protocol.max_payload_bytes,
        # Handle each client's events in order, as Socket.IO's own server
        # does: with a greenlet per event, two broadcasts from one client
        # could reach the room in the wrong order. The handlers are short.
        async_handlers=False,
        logger=logsafe.library_logger('socketio.kit'),
        engineio_logger=logsafe.library_logger('engineio.kit'),
    )
    instance = settings.instance_name

    @sio.event
    def connect(sid, environ, auth_data=None):
        _authenticate(sio, auth, sid, auth_data)
        session = cookie_value(environ, settings.session_cookie)
        sio.emit('welcome', {
            'instance': instance,
            'sid': sid,
            'transport': sio.transport(sid),
            'session': session,
        }, to=sid)

    @sio.event
    def join(sid, data=None):
        room, error = _room(data)
        state = sio.state_of(sid)
        error = error or _join_error(state, room, security, auth)
        if error:
            return {'ok': False, 'error': error, 'instance': instance}
        state.rooms.add(room)
        sio.enter_room(sid, room)
        return {'ok': True, 'room': room, 'instance': instance}

    @sio.event
    def leave(sid, data=None):
        room, error = _room(data)
        if error:
            return {'ok': False, 'error': error, 'instance': instance}
        getattr(sio.state_of(sid), 'rooms', set()).discard(room)
        sio.leave_room(sid, room)
        return {'ok': True, 'room': room, 'instance': instance}

    @sio.event
    def broadcast(sid, data=None):
        room, error = _room(data)
        error = error or _broadcast_error(sio, sid, room)
        if error:
            return {'ok': False, 'error': error, 'instance': instance}
        try:
            sio.emit('message', {'room': room, 'data': data.get('data'),
                                 'from': instance}, room=room)
        except (MessageTooLarge, ValueError) as exc:
            return {'ok': False, 'error': str(exc), 'instance': instance}
        return {'ok': True, 'room': room, 'instance': instance}

    @sio.event
    def whoami(sid, data=None):
        return {'instance': instance, 'sid': sid,
                'transport': sio.transport(sid), 'remembered': remembered(sio, sid)}

    @sio.on('*')
    def unknown(event, sid, data=None):
        return {'ok': False, 'error': f'unknown event {event!r}',
                'instance': instance}

    register_remember(sio, instance)
    register_admin(sio, auth, instance)
    return sio
