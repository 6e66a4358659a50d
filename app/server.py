"""The Socket.IO server of one instance and the demo contract it speaks.

Contract (documented in the README, used by the tests, the load test and the
browser page):
- on connect the server emits `welcome` {instance, sid, transport, session};
- `join` {room} acks {ok, room, instance};
- `leave` {room} acks {ok, room, instance};
- `broadcast` {room, data} delivers `message` {room, data, from} to every
  member of the room on every instance, exactly once, and acks {ok, ...};
- `whoami` acks {instance, sid, transport}.
Bad input gets an `{"ok": false, "error": ...}` ack, never an exception.
"""
import logging
import secrets
from http.cookies import SimpleCookie

import engineio
import socketio

from app.config import Settings

MAX_ROOM_LENGTH = 128

log = logging.getLogger('app')


class StickyEngineIOServer(engineio.Server):
    """Engine.IO server whose session ids start with the instance name.

    nginx reads the prefix of the `sid` query argument and sends every request
    of a session to the instance that created it (see nginx/nginx.conf.template).
    """

    instance_name = 'app'

    def generate_id(self):
        return f'{self.instance_name}.{secrets.token_urlsafe(15)}'


class InstanceServer(socketio.Server):
    """python-socketio Server that uses the instance-prefixed session ids."""

    def __init__(self, instance_name, **kwargs):
        self._sticky_class = type('StickyEngineIOServer', (StickyEngineIOServer,),
                                  {'instance_name': instance_name})
        super().__init__(**kwargs)

    def _engineio_server_class(self):
        return self._sticky_class


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
                        ','.join(sorted(self.allowed)))
        return False


def _room(data):
    if not isinstance(data, dict):
        return None, 'payload must be an object like {"room": "name"}'
    room = data.get('room')
    if not isinstance(room, str) or not 0 < len(room) <= MAX_ROOM_LENGTH:
        return None, f'room must be a string of 1-{MAX_ROOM_LENGTH} characters'
    return room, None


def session_from_environ(environ, cookie_name):
    """The value of the kit's session cookie on the handshake, if any."""
    try:
        cookie = SimpleCookie(environ.get('HTTP_COOKIE', ''))
    except Exception:  # a malformed Cookie header is the client's problem
        return None
    morsel = cookie.get(cookie_name)
    return morsel.value if morsel else None


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


def create_server(settings: Settings, client_manager=None) -> socketio.Server:
    """Build the Socket.IO server of one instance, with its event handlers."""
    if settings.cors_wildcard:
        cors = '*'
    else:
        cors = OriginPolicy(settings)
    sio = InstanceServer(
        settings.instance_name,
        async_mode=settings.worker_class,
        client_manager=client_manager,
        cors_allowed_origins=cors,
        cors_credentials=settings.cors_credentials,
        ping_interval=settings.ping_interval,
        ping_timeout=settings.ping_timeout,
        max_http_buffer_size=settings.max_payload_bytes,
        # Handle each client's events in order, as Socket.IO's own server
        # does: with a greenlet per event, two broadcasts from one client
        # could reach the room in the wrong order. The handlers are short.
        async_handlers=False,
        logger=False,
        engineio_logger=False,
    )
    instance = settings.instance_name

    @sio.event
    def connect(sid, environ, auth=None):
        session = session_from_environ(environ, settings.session_cookie)
        sio.emit('welcome', {
            'instance': instance,
            'sid': sid,
            'transport': sio.transport(sid),
            'session': session,
        }, to=sid)

    @sio.event
    def join(sid, data=None):
        room, error = _room(data)
        if error:
            return {'ok': False, 'error': error, 'instance': instance}
        sio.enter_room(sid, room)
        return {'ok': True, 'room': room, 'instance': instance}

    @sio.event
    def leave(sid, data=None):
        room, error = _room(data)
        if error:
            return {'ok': False, 'error': error, 'instance': instance}
        sio.leave_room(sid, room)
        return {'ok': True, 'room': room, 'instance': instance}

    @sio.event
    def broadcast(sid, data=None):
        room, error = _room(data)
        if error:
            return {'ok': False, 'error': error, 'instance': instance}
        sio.emit('message', {'room': room, 'data': data.get('data'),
                             'from': instance}, room=room)
        return {'ok': True, 'room': room, 'instance': instance}

    @sio.event
    def whoami(sid, data=None):
        return {'instance': instance, 'sid': sid,
                'transport': sio.transport(sid)}

    @sio.on('*')
    def unknown(event, sid, data=None):
        return {'ok': False, 'error': f'unknown event {event!r}',
                'instance': instance}

    return sio
