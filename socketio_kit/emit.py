"""Emit into the cluster's rooms from any process that is not a Socket.IO
client: a web backend, a cron job, a worker.

    from socketio_kit.emit import create_emitter
    emitter = create_emitter('redis://127.0.0.1:6390/0')
    emitter.emit('message', {'room': 'lobby', 'data': 'hi'}, room='lobby')
    emitter.emit('notice', {'text': 'just you'}, to=sid)

or from a shell (REDIS_URL from the environment, as the instances read it;
without it, the native cluster's that `make local` runs in this checkout):

    python -m socketio_kit.emit --room lobby --event message '{"data": "hi"}'

The message goes through the kit's Redis stream like a broadcast from an
instance: every instance delivers it to its own members of the room, so each
client gets it exactly once, and a client that was away recovers it. The
emitter only publishes: it never receives, so it holds no rooms and needs no
Socket.IO server. It holds a message to what the instances accept:
ADAPTER_MAX_MESSAGE_BYTES, and JSON every client can read (no NaN, no
Infinity, no integer past 2**53 - 1); a message over either is refused before
Redis sees it.
"""
import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit

import redis

from socketio_kit.cluster.streams import StreamsManager
from socketio_kit.config import ConfigError, Settings, load_protocol, load_settings
from socketio_kit.config.security import load_security
from socketio_kit.config.settings import environment_sets
from socketio_kit.config.streams import load_streams
from socketio_kit.policy import strictjson
from socketio_kit.policy.limits import MessageTooLarge

# Native mode (native/cluster.py) writes what it gives its instances, as far
# as an emitter needs it, to RUN_DIR/emitter.env (mode 0600: the URL carries
# Redis's password) for as long as the cluster runs. `make local` runs in
# this checkout's .run/local.
NATIVE_RUN_DIR = Path(__file__).resolve().parent.parent / '.run' / 'local'
NATIVE_SETTINGS = 'emitter.env'


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


def instance_defaults() -> Tuple[int, int]:
    """ADAPTER_MAX_MESSAGE_BYTES and STREAM_MAXLEN as the instances set them
    when nothing is configured."""
    security = load_security({}, load_protocol({}).max_payload_bytes)
    return security.adapter_max_message_bytes, load_streams({}).maxlen


def create_emitter(redis_url: str, max_message_bytes: Optional[int] = None,
                   maxlen: Optional[int] = None) -> Emitter:
    """An emitter on the stream the instances read (socketio_kit/cluster/streams.py, write-only):
    its messages get stream offsets, so clients can recover them like any
    broadcast.

    max_message_bytes is the instances' ADAPTER_MAX_MESSAGE_BYTES and maxlen
    their STREAM_MAXLEN (None: their defaults): a message they would refuse
    raises MessageTooLarge here, and one that is not strict JSON a ValueError,
    before anything reaches Redis."""
    default_cap, default_maxlen = instance_defaults()
    return Emitter(StreamsManager(
        redis_url, write_only=True, maxlen=maxlen or default_maxlen,
        max_message_bytes=max_message_bytes or default_cap))


@dataclass(frozen=True)
class Target:
    """The cluster the CLI emits into: an instance's settings, as far as an
    emitter needs them, and where they were found (for its messages)."""
    redis_url: str
    max_message_bytes: int
    maxlen: int
    source: str            # REDIS_URL, --redis-url, or the native cluster's file
    native: bool = False   # found through a running native cluster

    @property
    def redis_address(self) -> str:
        """host:port (or the socket path) of the URL, without its password."""
        url = urlsplit(self.redis_url)
        return url.path if url.scheme == 'unix' else f'{url.hostname}:{url.port or 6379}'


class NoCluster(RuntimeError):
    """Neither REDIS_URL nor a running native cluster: nowhere to emit."""


def native_settings_text(settings: Settings) -> str:
    """RUN_DIR/emitter.env of a native cluster whose instances have settings."""
    return (f'REDIS_URL={settings.redis_url}\n'
            f'ADAPTER_MAX_MESSAGE_BYTES={settings.security.adapter_max_message_bytes}\n'
            f'STREAM_MAXLEN={settings.streams.maxlen}\n')


def read_native_settings(path: Path) -> Target:
    """The Target a native cluster recorded in path (see native_settings_text)."""
    values: Dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition('=')
        if sep:
            values[name.strip()] = value.strip()
    try:
        return Target(values['REDIS_URL'], int(values['ADAPTER_MAX_MESSAGE_BYTES']),
                      int(values['STREAM_MAXLEN']), str(path), native=True)
    except (KeyError, ValueError):
        raise NoCluster(f'{path} is not what native mode writes (REDIS_URL, '
                        f'ADAPTER_MAX_MESSAGE_BYTES, STREAM_MAXLEN); restart the '
                        f'native cluster (make local-down local) or set REDIS_URL.') from None


def cli_target(redis_url: Optional[str], run_dir: Path) -> Target:
    """--redis-url or REDIS_URL with the environment's settings, as an instance
    reads them; without either, the running native cluster's in run_dir."""
    if redis_url or environment_sets('REDIS_URL'):
        settings = load_settings()
        return Target(redis_url or settings.redis_url,
                      settings.security.adapter_max_message_bytes, settings.streams.maxlen,
                      '--redis-url' if redis_url else 'REDIS_URL')
    path = run_dir / NATIVE_SETTINGS
    try:
        return read_native_settings(path)
    except FileNotFoundError:
        raise NoCluster(f'REDIS_URL is not set and no native cluster runs here ({path} '
                        f'does not exist; make local writes it); set REDIS_URL to the '
                        f"cluster's Redis (and REDIS_PASSWORD_FILE if it has a password), "
                        f'or start the native cluster with make local.') from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m socketio_kit.emit',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('data', nargs='?', default='null', help='the payload, as JSON')
    parser.add_argument('--event', required=True)
    recipients = parser.add_mutually_exclusive_group()
    recipients.add_argument('--room', help='every member of this room')
    recipients.add_argument('--to', help="one client's sid")
    parser.add_argument('--namespace', default='/')
    parser.add_argument('--redis-url', help='default: REDIS_URL, as an instance reads it; '
                        "without it, the running native cluster's")
    parser.add_argument('--native-run-dir', type=Path, default=NATIVE_RUN_DIR,
                        help="where a native cluster's settings are looked for when there is "
                        'no REDIS_URL (default: make local\'s, %(default)s)')
    args = parser.parse_args(argv)
    try:
        data = strictjson.loads(args.data)
    except strictjson.StrictJSONError as exc:
        return _refuse(f'the payload is JSON a client cannot read ({exc}); send finite '
                       f'numbers and integers within +-(2**53 - 1).')
    except ValueError as exc:
        return _refuse(f'the payload is not JSON ({exc}); quote it, e.g. \'{{"a": 1}}\'.')
    try:
        target = cli_target(args.redis_url, args.native_run_dir)
    except ConfigError as exc:
        return _refuse(f'config error: {exc}')
    except NoCluster as exc:
        return _refuse(str(exc))
    emitter = create_emitter(target.redis_url, target.max_message_bytes, target.maxlen)
    try:
        emitter.manager.redis.ping()
        emitter.emit(args.event, data, room=args.room, to=args.to, namespace=args.namespace)
    except redis.AuthenticationError as exc:
        print(f'emit: not sent: Redis at {target.redis_address} (from {target.source}) '
              f'refused the password, or wants one ({exc}); put it in the URL or in '
              f'REDIS_PASSWORD_FILE.', file=sys.stderr)
        return 1
    except redis.RedisError as exc:
        print(f'emit: not sent: Redis at {target.redis_address} (from {target.source}) '
              f'does not answer ({exc}).', file=sys.stderr)
        return 1
    except (MessageTooLarge, ValueError) as exc:
        return _refuse(f'not sent: {exc}.')
    if target.native:
        print(f'emit: REDIS_URL is not set, so this went to the running native cluster '
              f'(its settings: {target.source}).', file=sys.stderr)
    return 0


def _refuse(line: str) -> int:
    print(f'emit: {line}', file=sys.stderr)
    return 2


if __name__ == '__main__':
    raise SystemExit(main())
