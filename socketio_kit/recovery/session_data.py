"""The application's session data in a recoverable session's record.

What a handler keeps with python-socketio's `save_session` (also `with
sio.session(sid)`), Node's `socket.data`, lives in one instance's Engine.IO
session. With recovery on, socketio_kit.Server.save_session hands it to
socketio_kit.recovery, which writes it into the client's record in Redis
(socketio_kit/recovery/sessions.py) with its rooms, whenever it changes; it is also taken as it
stands once the client is connected, so what the connect handler saved is
kept. A recovery on any instance puts it back before the client's handlers
run.

It is kept as strict JSON, at most MAX_PAYLOAD_BYTES (what one client message
may carry): what JSON cannot hold (a set, an object, NaN, a cycle) or more is
refused with one log line, and the record then holds no data, so a recovery
restores none rather than an older one; the app's own session on its instance
is untouched either way. JSON brings tuples back as lists and keys as strings.
"""
import json
import logging

from socketio_kit.observability.logs import fields
from socketio_kit.policy import strictjson

log = logging.getLogger('socketio_kit.recovery')


class SessionData:
    """The app's session data of one instance's recoverable sessions: `eio`
    is its Engine.IO server, `limit` the bytes a record may keep."""

    def __init__(self, eio, limit: int):
        self.eio, self.limit = eio, limit

    def encode(self, sid: str, value) -> str:
        """The record's `data` for the app's session `value`, or '' (refused)."""
        try:
            text = strictjson.dumps(value, separators=(',', ':'))
        except (TypeError, ValueError, RecursionError) as exc:
            reason, why = 'not JSON', f'{type(exc).__name__}: {str(exc)[:80]}'
        else:
            if len(text) <= self.limit:  # ASCII: json.dumps escapes the rest
                return text
            reason, why = 'too large', f'{len(text)} bytes of JSON'
        log.warning('session data of %s not kept for recovery (%s, %s; the '
                    'limit is MAX_PAYLOAD_BYTES=%d): a recovery restores none',
                    sid, reason, why, self.limit, extra=fields(
                        sid=sid, event='session_data_refused', reason=reason))
        return ''

    def changed(self, session, namespace: str, sid: str, value) -> bool:
        """Keep `value`, just saved by the app, in `session` (socketio_kit.recovery.sessions.
        Session, or None): whether its record needs writing."""
        if session is None or session.namespace != namespace:
            return False
        data = self.encode(sid, value)
        if data == session.data:
            return False
        session.data = data
        return True

    def snapshot(self, eio_sid: str, namespace: str, sid: str) -> str:
        """The record's `data` for what a connected client's session holds
        now (what the connect handler saved, or what a recovery put back)."""
        try:
            sessions = self.eio.get_session(eio_sid)
        except KeyError:            # gone meanwhile
            return ''
        if namespace not in sessions:
            return ''
        return self.encode(sid, sessions[namespace])

    def put_back(self, eio_sid: str, namespace: str, data: str):
        """A recovered client's session, restored on this instance as
        save_session stores it, before its handlers run."""
        if not data:
            return
        try:
            self.eio.get_session(eio_sid)[namespace] = json.loads(data)
        except (KeyError, ValueError):  # gone meanwhile; not the kit's record
            pass
