"""The demo contract, an application of the kit like any other.

- on connect the server emits `welcome` {instance, sid, transport, session};
- `join` {room} acks {ok, room, instance};
- `leave` {room} acks {ok, room, instance};
- `broadcast` {room, data} delivers `message` {room, data, from} to every
  member of the room on every instance, exactly once, and acks {ok, ...};
- `remember` {value} keeps a short string in the client's session
  (demo/remember.py) and acks {ok, instance};
- `whoami` acks {instance, sid, transport, remembered}.
Bad input gets an `{"ok": false, "error": ...}` ack, never an exception.

The contract asks for the strict input shape (`strict_events=True`: one
object per event, no binary); `register(sio)` adds it to any kit server, as
the hostile suite does on a server with the default, permissive shapes.

The runtime, not these handlers, checks tokens (AUTH_MODE=jwt) and admits
rooms (MAX_ROOMS_PER_CLIENT, the token's room claims, no sid-named rooms):
`enter_room` raises RoomRefused, whose reason the `join` ack carries.
"""
from demo.remember import register_remember, remembered
from socketio_kit.policy.binding import cookie_value
from socketio_kit.policy.limits import MessageTooLarge
from socketio_kit.policy.rooms import MAX_ROOM_LENGTH, RoomRefused

EVENTS = ('connect', 'join', 'leave', 'broadcast', 'whoami')


def _room(data):
    if not isinstance(data, dict):
        return None, 'payload must be an object like {"room": "name"}'
    room = data.get('room')
    if not isinstance(room, str) or not 0 < len(room) <= MAX_ROOM_LENGTH:
        return None, f'room must be a string of 1-{MAX_ROOM_LENGTH} characters'
    return room, None


class Contract:
    """The contract's handlers, on one kit server."""

    def __init__(self, sio):
        self.sio, self.instance = sio, sio.instance_name

    def refused(self, error):
        return {'ok': False, 'error': error, 'instance': self.instance}

    def ok(self, room):
        return {'ok': True, 'room': room, 'instance': self.instance}

    def connect(self, sid, environ, auth=None):
        sio = self.sio
        sio.emit('welcome', {
            'instance': self.instance,
            'sid': sid,
            'transport': sio.transport(sid),
            'session': cookie_value(environ, sio.settings.session_cookie),
        }, to=sid)

    def join(self, sid, data=None):
        room, error = _room(data)
        if error:
            return self.refused(error)
        try:
            self.sio.enter_room(sid, room)
        except RoomRefused as exc:
            return self.refused(str(exc))
        return self.ok(room)

    def leave(self, sid, data=None):
        room, error = _room(data)
        if error:
            return self.refused(error)
        self.sio.leave_room(sid, room)
        return self.ok(room)

    def broadcast(self, sid, data=None):
        room, error = _room(data)
        if error:
            return self.refused(error)
        # Only into rooms the sender is in (and so was admitted to).
        if sid not in self.sio.manager.rooms.get('/', {}).get(room, ()):
            return self.refused(f'join {room!r} before broadcasting to it')
        try:
            self.sio.emit('message', {'room': room, 'data': data.get('data'),
                                      'from': self.instance}, room=room)
        except (MessageTooLarge, ValueError) as exc:
            return self.refused(str(exc))
        return self.ok(room)

    def whoami(self, sid, data=None):
        return {'instance': self.instance, 'sid': sid, 'transport': self.sio.transport(sid),
                'remembered': remembered(self.sio, sid)}

    def unknown(self, event, sid, data=None):
        return self.refused(f'unknown event {event!r}')


def register(sio):
    """Add the contract's handlers to a kit server."""
    contract = Contract(sio)
    for event in EVENTS:
        sio.on(event, getattr(contract, event))
    sio.on('*', contract.unknown)
    register_remember(sio, contract.instance)

