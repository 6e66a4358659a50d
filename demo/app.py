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

The runtime, not these handlers, checks tokens (AUTH_MODE=jwt) and admits
rooms (MAX_ROOMS_PER_CLIENT, the token's room claims, no sid-named rooms):
`enter_room` raises RoomRefused, whose reason the `join` ack carries.
"""
import socketio_kit
from demo.remember import register_remember, remembered
from socketio_kit.policy.binding import cookie_value
from socketio_kit.policy.limits import MessageTooLarge
from socketio_kit.policy.rooms import MAX_ROOM_LENGTH, RoomRefused

# The contract's input shape: one object per event, no binary.
sio = socketio_kit.Server(strict_events=True)
instance = sio.instance_name


def _room(data):
    if not isinstance(data, dict):
        return None, 'payload must be an object like {"room": "name"}'
    room = data.get('room')
    if not isinstance(room, str) or not 0 < len(room) <= MAX_ROOM_LENGTH:
        return None, f'room must be a string of 1-{MAX_ROOM_LENGTH} characters'
    return room, None


def _refused(error):
    return {'ok': False, 'error': error, 'instance': instance}


@sio.event
def connect(sid, environ, auth=None):
    sio.emit('welcome', {
        'instance': instance,
        'sid': sid,
        'transport': sio.transport(sid),
        'session': cookie_value(environ, sio.settings.session_cookie),
    }, to=sid)


@sio.event
def join(sid, data=None):
    room, error = _room(data)
    if error:
        return _refused(error)
    try:
        sio.enter_room(sid, room)
    except RoomRefused as exc:
        return _refused(str(exc))
    return {'ok': True, 'room': room, 'instance': instance}


@sio.event
def leave(sid, data=None):
    room, error = _room(data)
    if error:
        return _refused(error)
    sio.leave_room(sid, room)
    return {'ok': True, 'room': room, 'instance': instance}


@sio.event
def broadcast(sid, data=None):
    room, error = _room(data)
    if error:
        return _refused(error)
    # Only into rooms the sender is in (and so was admitted to).
    if room not in sio.rooms(sid):
        return _refused(f'join {room!r} before broadcasting to it')
    try:
        sio.emit('message', {'room': room, 'data': data.get('data'),
                             'from': instance}, room=room)
    except (MessageTooLarge, ValueError) as exc:
        return _refused(str(exc))
    return {'ok': True, 'room': room, 'instance': instance}


@sio.event
def whoami(sid, data=None):
    return {'instance': instance, 'sid': sid,
            'transport': sio.transport(sid), 'remembered': remembered(sio, sid)}


@sio.on('*')
def unknown(event, sid, data=None):
    return _refused(f'unknown event {event!r}')


register_remember(sio, instance)
