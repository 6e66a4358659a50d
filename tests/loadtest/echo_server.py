"""A plain python-socketio server (eventlet) speaking the demo contract, for
the framing tests: `python echo_server.py PORT [polling-only]`.

It pings every second with a one-second timeout, so a client that does not
answer pong is dropped within the test, and it has no Redis: one instance.
"""
import sys

import eventlet

eventlet.monkey_patch()

import socketio  # noqa: E402

ORIGIN = 'http://localhost:8081'


def create(polling_only: bool) -> socketio.Server:
    sio = socketio.Server(
        async_mode='eventlet', cors_allowed_origins=[ORIGIN], ping_interval=1,
        ping_timeout=1, transports=['polling'] if polling_only else None)

    @sio.event
    def connect(sid, environ, auth=None):
        sio.emit('welcome', {'instance': 'echo', 'sid': sid,
                             'transport': sio.transport(sid), 'session': None},
                 to=sid)

    @sio.event
    def join(sid, data):
        sio.enter_room(sid, data['room'])
        return {'ok': True, 'room': data['room'], 'instance': 'echo'}

    @sio.event
    def broadcast(sid, data):
        sio.emit('message', {'room': data['room'], 'data': data.get('data'),
                             'from': 'echo'}, room=data['room'])
        return {'ok': True, 'room': data['room'], 'instance': 'echo'}

    @sio.event
    def whoami(sid, data=None):
        return {'instance': 'echo', 'sid': sid, 'transport': sio.transport(sid)}

    @sio.event
    def kick(sid, data=None):
        sio.disconnect(sid)

    @sio.event
    def echo_ack(sid, data=None):
        # Several ack arguments and a non-ASCII, nested payload.
        return data, 'second'

    return sio


if __name__ == '__main__':
    port = int(sys.argv[1])
    app = socketio.WSGIApp(create(len(sys.argv) > 2))
    eventlet.wsgi.server(eventlet.listen(('127.0.0.1', port)), app, log_output=False)
