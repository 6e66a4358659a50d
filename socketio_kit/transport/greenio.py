"""The few cooperative-I/O primitives the data plane needs, for eventlet and gevent.

The WebSocket writer (socketio_kit/transport/websocket.py) never blocks the greenlet that emits:
it tries a non-blocking send on the raw socket, and only a client that cannot
keep up gets a greenlet of its own. That needs the raw (non-green) socket, a
callback at the end of the current hub iteration (to coalesce the frames of
one tick into one write) and a way to spawn, sleep and kill greenlets.
"""
import os
import socket


class Green:
    """Primitives of one async library; built by `green(worker_class)`."""

    def __init__(self, worker_class: str):
        self.worker_class = worker_class
        if worker_class == 'eventlet':
            import eventlet
            from eventlet import hubs
            self._spawn, self.sleep = eventlet.spawn, eventlet.sleep
            self._call_soon = lambda fn: hubs.get_hub().schedule_call_global(0, fn)
            self._kill = lambda gt: gt.kill()
            from eventlet.green import socket as green_socket
        elif worker_class == 'gevent':
            import gevent
            self._spawn, self.sleep = gevent.spawn, gevent.sleep
            self._call_soon = lambda fn: gevent.get_hub().loop.run_callback(fn)
            self._kill = lambda g: g.kill(block=False)
            from gevent import socket as green_socket
        else:
            raise ValueError(f'unsupported worker class {worker_class!r}')
        self._socket_class = green_socket.socket

    def spawn(self, fn, *args):
        return self._spawn(fn, *args)

    def call_soon(self, fn):
        """Run fn() from the hub once the running greenlets have yielded.

        fn must not block: it runs in the hub, where nothing may switch.
        """
        self._call_soon(fn)

    def kill(self, greenlet):
        self._kill(greenlet)

    def adopt(self, sock):
        """A green socket of our own on a duplicate of sock's descriptor: the
        connection outlives the request that brought it (see socketio_kit/transport/engine.py)."""
        return self._socket_class(fileno=os.dup(sock.fileno()))

    def raw_socket(self, sock) -> socket.socket:
        """The non-blocking OS-level socket behind a green socket.

        Its send() raises BlockingIOError instead of switching greenlets, which
        is what lets a broadcast write to thousands of clients without a
        greenlet switch per client.
        """
        if self.worker_class == 'eventlet':
            raw = getattr(sock, 'fd', None)
        else:
            raw = getattr(sock, '_sock', None)
        if raw is None or os.get_blocking(raw.fileno()):
            raise RuntimeError(
                f'{self.worker_class}: the client socket is not a non-blocking '
                f'green socket; the WebSocket transport needs gunicorn\'s '
                f'{self.worker_class} worker')
        return raw
