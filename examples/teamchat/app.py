"""teamchat: a small python-socketio application, written as its docs teach,
that the kit serves with `APP=app:app APP_PATH=examples/teamchat`.

It uses the idioms ordinary applications use: events with several arguments,
acks with several values, binary attachments, the session (`save_session`,
`with sio.session()`), rooms and `close_room`, an emit to one sid, a
class-based namespace, a cluster-wide background task and an HTTP route of
its own. The one line that differs from a stock python-socketio app is the
server's class: `socketio_kit.Server` instead of `socketio.Server`.
"""
import hashlib
import json

import socketio

import socketio_kit

sio = socketio_kit.Server()


@sio.event
def connect(sid, environ, auth=None):
    # A recovered connection already has its session back: keep it.
    if not sio.recovered(sid):
        sio.save_session(sid, {'name': (auth or {}).get('name', 'anonymous')})
    sio.emit('hello', {'sid': sid, 'instance': sio.instance_name,
                       'recovered': sio.recovered(sid)}, to=sid)


@sio.event
def join(sid, room):
    sio.enter_room(sid, room)
    return 'joined', room


@sio.event
def leave(sid, room):
    sio.leave_room(sid, room)
    return 'left', room


@sio.event
def say(sid, room, text, meta=None):
    """Several arguments in, several arguments out to the room."""
    with sio.session(sid) as session:
        name = session['name']
    sio.emit('said', (room, name, text, meta), room=room)
    return True, sio.instance_name


@sio.event
def upload(sid, room, filename, blob):
    """A binary attachment, passed on to the room."""
    sio.emit('file', (filename, blob), room=room, skip_sid=sid)
    return len(blob), hashlib.sha256(blob).hexdigest()


@sio.event
def whisper(sid, to, text):
    sio.emit('whisper', {'from': sid, 'text': text}, to=to)


@sio.event
def rename(sid, name):
    with sio.session(sid) as session:
        session['name'] = name
    return name


@sio.event
def whoami(sid):
    return sio.get_session(sid)['name'], sio.instance_name, sio.recovered(sid)


@sio.event
def close(sid, room):
    sio.emit('closing', room, room=room)
    sio.close_room(room)


class Stats(socketio.Namespace):
    """A class-based namespace."""

    def on_connect(self, sid, environ, auth=None):
        self.emit('ready', self.server.instance_name, to=sid)

    def on_add(self, sid, a, b):
        return a + b, self.server.instance_name


sio.register_namespace(Stats('/stats'))


def ticker():
    """Runs on one instance of the cluster at a time."""
    n = 0
    while True:
        sio.sleep(1)
        n += 1
        sio.emit('tick', {'n': n, 'instance': sio.instance_name, 'fence': ticker_task.fence})


ticker_task = sio.start_cluster_task(ticker)


def http(environ, start_response):
    """The application's own HTTP route."""
    if environ.get('PATH_INFO') == '/hello':
        body = json.dumps({'hello': 'teamchat', 'instance': sio.instance_name}).encode()
        start_response('200 OK', [('Content-Type', 'application/json'),
                                  ('Content-Length', str(len(body)))])
        return [body]
    start_response('404 Not Found', [('Content-Type', 'text/plain')])
    return [b'not found']


app = socketio.WSGIApp(sio, http)
