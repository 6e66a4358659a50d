"""Emit into the cluster's rooms from any process that is not a Socket.IO
client: a web backend, a cron job, a worker.

    from socketio_kit.emit import create_emitter
    emitter = create_emitter('redis://127.0.0.1:6390/0')
    emitter.emit('message', {'room': 'lobby', 'data': 'hi'}, room='lobby')
    emitter.emit('notice', {'text': 'just you'}, to=sid)

or from a shell (REDIS_URL from the environment, as the instances read it):

    python -m socketio_kit.emit --room lobby --event message '{"data": "hi"}'

The message goes through the kit's Redis stream like a broadcast from an
instance: every instance delivers it to its own members of the room, so each
client gets it exactly once, and a client that was away recovers it. The
emitter only publishes: it never receives, so it holds no rooms and needs no
Socket.IO server.
"""
import argparse
import json
import sys
from typing import Any, Optional

from socketio_kit.cluster.streams import StreamsManager
from socketio_kit.config import ConfigError, load_settings


class Emitter:
    """A small API over the kit's write-only manager."""

    def __init__(self, manager):
        self.manager = manager

    def emit(self, event: str, data: Any = None, room: Optional[str] = None,
             to: Optional[str] = None, namespace: str = '/', skip_sid=None):
        """`event` with `data` (a tuple: several arguments) to a room, one
        client's sid (`to`), or, with neither, every client of `namespace`."""
        self.manager.emit(event, data, namespace=namespace, room=to or room,
                          skip_sid=skip_sid)

    def close_room(self, room: str, namespace: str = '/'):
        """Take every member out of `room`, on every instance."""
        self.manager.close_room(room, namespace=namespace)

    def disconnect(self, sid: str, namespace: str = '/'):
        """Disconnect one client, on whichever instance holds it."""
        # The manager's own disconnect() would first look for the client in
        # this process, which has none.
        self.manager._publish({'method': 'disconnect', 'sid': sid, 'namespace': namespace,
                               'host_id': self.manager.host_id})


def create_emitter(redis_url: str) -> Emitter:
    """An emitter on the stream the instances read (socketio_kit/cluster/streams.py, write-only):
    its messages get stream offsets, so clients can recover them like any
    broadcast."""
    return Emitter(StreamsManager(redis_url, write_only=True))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m socketio_kit.emit', description=__doc__.split('\n')[0])
    parser.add_argument('data', nargs='?', default='null', help='the payload, as JSON')
    parser.add_argument('--event', required=True)
    target = parser.add_mutually_exclusive_group()
    target.add_argument('--room', help='every member of this room')
    target.add_argument('--to', help="one client's sid")
    parser.add_argument('--namespace', default='/')
    parser.add_argument('--redis-url', help='default: REDIS_URL, as socketio_kit/config/settings.py reads it')
    args = parser.parse_args(argv)
    try:
        data = json.loads(args.data)
    except ValueError as exc:
        print(f'emit: the payload is not JSON ({exc}); quote it, e.g. \'{{"a": 1}}\'.',
              file=sys.stderr)
        return 2
    try:
        url = args.redis_url or load_settings().redis_url
    except ConfigError as exc:
        print(f'config error: {exc}', file=sys.stderr)
        return 2
    create_emitter(url).emit(args.event, data, room=args.room, to=args.to,
                             namespace=args.namespace)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
