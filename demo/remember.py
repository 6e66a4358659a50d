"""The demo contract's `remember` event: `{"value": S}` keeps the string S
(at most MAX_REMEMBERED_LENGTH characters) in the client's python-socketio
session (`with sio.session(sid)`, i.e. save_session), and `whoami` acks it
back as `remembered` (null before any). With recovery on, a client that
recovers on any instance has it still (socketio_kit/recovery/session_data.py).
"""
MAX_REMEMBERED_LENGTH = 256
KEY = 'remembered'


def remembered(sio, sid):
    """What the client last remembered, or None."""
    session = sio.get_session(sid)
    return session.get(KEY) if isinstance(session, dict) else None


def register_remember(sio, instance: str):
    """Add the `remember` handler to the instance's server."""

    @sio.event
    def remember(sid, data=None):
        value = data.get('value') if isinstance(data, dict) else None
        if not isinstance(value, str) or len(value) > MAX_REMEMBERED_LENGTH:
            return {'ok': False, 'instance': instance, 'error': (
                f'value must be a string of at most {MAX_REMEMBERED_LENGTH} '
                f'characters')}
        with sio.session(sid) as session:
            session[KEY] = value
        return {'ok': True, 'instance': instance}
