"""The Redis Streams client manager: every broadcast is XADDed to one bounded
stream, which every instance reads with XREAD BLOCK. It replaces python-socketio's
pub/sub `RedisManager` and keeps its message format, so every emit form still crosses
instances. The entry id is the message's *offset*: members get it as the event's last
argument, and a client that comes back with it is replayed what it missed
(socketio_kit/recovery/hooks.py). While Redis is down, emits wait in a bounded
outbox (socketio_kit/cluster/outbox.py)
and members here get them at once; an epoch key says Redis came back empty; an emit
written twice is read once (socketio_kit/cluster/dedupe.py). One stream, not sharded by
room: measured
in bench/NOTES.md ("Stream layout")."""
import itertools
import logging
import secrets
import time
from collections import Counter

import redis
import socketio

from socketio_kit.cluster.dedupe import SeenEmits
from socketio_kit.cluster.entries import event_args, message_data
from socketio_kit.cluster.fanout import FanoutManager
from socketio_kit.cluster.outbox import Outbox
from socketio_kit.policy import strictjson
from socketio_kit.policy.limits import MessageTooLarge

REDIS_RETRY = 0.25          # seconds between listener/outbox attempts
BLOCK_MS = 500              # XREAD BLOCK: also how often the loop checks state
READ_COUNT = 1000           # entries per XREAD
REDIS_CONNECTIONS = 200     # per instance, besides the listener's
EPOCH_CHECK_EVERY = 5.0     # seconds between epoch checks while Redis answers

log = logging.getLogger('socketio_kit.cluster.streams')


class StreamsManager(socketio.PubSubManager, FanoutManager):
    """Client manager on one Redis stream (see the module docstring).
    `StreamsManager(url, write_only=True)` is the kit's emitter API for other
    processes: `.emit(event, data, to=/room=, skip_sid=, namespace=)`,
    `.close_room(room)`, `.disconnect(sid)`."""
    name = 'kit-streams'

    def __init__(self, url, key='socketio', maxlen=100_000, max_age=600,
                 outbox_max=10_000, outbox_max_age=60, write_only=False,
                 logger=None, max_message_bytes=2 ** 62):
        super().__init__(channel=key, write_only=write_only, logger=logger)
        self.max_message_bytes = max_message_bytes   # ADAPTER_MAX_MESSAGE_BYTES
        self.stream = f'{key}:stream'
        self.epoch_key = f'{key}:epoch'
        self.maxlen, self.max_age = maxlen, max_age
        # Short timeouts: an emit must not hang a handler when Redis hangs. A
        # reconnect storm runs a Redis call per client at once: wait for a
        # free connection rather than fail (redis-py's pool refuses past 100).
        self.redis = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(
            url, max_connections=REDIS_CONNECTIONS, timeout=2, socket_timeout=1,
            socket_connect_timeout=1))
        self.reader = redis.Redis.from_url(
            url, socket_timeout=BLOCK_MS / 1000 + 1, socket_connect_timeout=1)
        self.outbox = Outbox(outbox_max, outbox_max_age)
        self.redis_up = True
        self.last_id = None          # listener position; None: not known yet
        self.epoch = None
        self.stats = Counter()
        self.recovery = None         # socketio_kit.recovery.Recovery, when enabled
        self.holding = {}            # sid -> [(offset, eio packet)] during replay
        self.floors = {}             # sid -> position a replay sent up to
        self.wanted_sid = {}         # eio_sid -> the sid a recovery restores
        self.inflight = set()        # emits between XADD and local delivery
        self._tokens = itertools.count()
        self.seen = SeenEmits()

    # -- start-up ---------------------------------------------------------------
    def initialize(self):
        socketio.Manager.initialize(self)
        if self.write_only:
            return
        try:
            self._check_epoch()
            self.last_id = self._stream_end()
        except redis.RedisError as exc:
            log.warning('Redis does not answer at start-up (%s); the listener '
                        'retries every %.2fs', exc, REDIS_RETRY)
            self.redis_up = False
        self.server.start_background_task(self._listen_loop)
        self.server.start_background_task(self._flush_loop)

    def _stream_end(self):
        last = self.redis.xrevrange(self.stream, count=1)
        return last[0][0].decode() if last else '0-0'

    def _check_epoch(self):
        """Adopt Redis's epoch; a different or missing one means Redis lost
        its data (restarted empty): read the new stream from its start."""
        self.redis.set(self.epoch_key, secrets.token_hex(8), nx=True)
        epoch = self.redis.get(self.epoch_key).decode()
        if self.epoch is not None and epoch != self.epoch:
            self.stats['epoch_changes'] += 1
            log.warning('Redis came back empty (epoch %s -> %s): sessions '
                        'from before cannot be recovered; reading the new '
                        'stream from its start', self.epoch, epoch)
            self.last_id = '0-0'
        self.epoch = epoch

    # -- emitting -----------------------------------------------------------------
    def _is_local_sid(self, room, namespace):
        return isinstance(room, str) and self.eio_sid_from_sid(room, namespace) is not None

    def emit(self, event, data, namespace=None, room=None, skip_sid=None,
             callback=None, to=None, **kwargs):
        room = to or room
        namespace = namespace or '/'
        # One client of this instance: straight to it, like Node's
        # socket.emit (no stream entry, no offset); so is ignore_queue.
        if kwargs.get('ignore_queue') or (
                callback is None and self._is_local_sid(room, namespace)):
            return FanoutManager.emit(self, event, data, namespace, room=room,
                                      skip_sid=skip_sid, callback=callback)
        if callback is not None:  # acks: python-socketio's path, no offset
            return super().emit(event, data, namespace=namespace, room=room,
                                skip_sid=skip_sid, callback=callback)
        args, binary = message_data(list(data) if isinstance(data, tuple) else [data])
        token = next(self._tokens)   # also its serial (socketio_kit/cluster/dedupe.py)
        message = {'method': 'emit', 'event': event, 'data': args,
                   'binary': binary, 'namespace': namespace, 'room': room,
                   'skip_sid': skip_sid, 'callback': None,
                   'host_id': self.host_id, 'n': token}
        self.inflight.add(token)
        try:
            offset = self._append(message)
            self._handle_emit(message, offset)
        finally:
            self.inflight.discard(token)

    def settle(self, timeout=1.0):
        """Wait until the emits of this instance that are between XADD and
        local delivery now have delivered (a replay must not race them)."""
        waiting = set(self.inflight)
        deadline = time.monotonic() + timeout
        while waiting & self.inflight and time.monotonic() < deadline:
            self.server.sleep(0.002)

    def _publish(self, message):
        """PubSubManager's hook (close_room, disconnect, rooms, acks)."""
        self._append(message)

    def _append(self, message):
        """XADD the message; its offset, or None if it went to the outbox.
        Every path to the stream passes here (server emits, the emitter,
        close_room, acks): a message over ADAPTER_MAX_MESSAGE_BYTES raises
        MessageTooLarge, and one that is not strict JSON (NaN, 2**55) raises
        StrictJSONError, before Redis or any instance sees it."""
        raw = strictjson.dumps(message)
        if len(raw) > self.max_message_bytes:
            raise MessageTooLarge(f'adapter message of {len(raw)} bytes is over '
                                  f'ADAPTER_MAX_MESSAGE_BYTES={self.max_message_bytes}')
        strictjson.loads(raw)   # what every instance will read back
        if self.redis_up and not self.outbox:
            try:
                self.metrics.adapter_published()
                return self.redis.xadd(self.stream, {'m': raw}, maxlen=self.maxlen,
                                       approximate=True).decode()
            except redis.RedisError as exc:
                self._down(exc)
        if self.write_only:
            raise redis.ConnectionError('Redis does not answer; not sent')
        self.outbox.put(raw)
        return None

    def _down(self, exc):
        if self.redis_up:
            log.warning('Redis does not answer (%s): emits wait in the outbox, '
                        'members here still receive them', exc)
        self.redis_up = False

    def _flush_loop(self):
        """Write the outbox to the stream, oldest first, once Redis answers."""
        while True:
            if not self.outbox:
                self.server.sleep(0.05)
                continue
            last_seq, batch = self.outbox.peek(500)
            try:
                pipe = self.redis.pipeline(transaction=False)
                for raw in batch:
                    pipe.xadd(self.stream, {'m': raw}, maxlen=self.maxlen,
                              approximate=True)
                pipe.execute()
            except redis.RedisError as exc:
                self._down(exc)
                self.server.sleep(REDIS_RETRY)
                continue
            self.outbox.done(last_seq)
            self.stats['outbox_flushed'] += len(batch)
            if not self.outbox:
                self.redis_up = True

    # -- receiving ------------------------------------------------------------------
    def _listen_loop(self):
        down_since = None
        next_check = 0.0
        while True:
            try:
                now = time.monotonic()
                if down_since is not None or now >= next_check:
                    self._check_epoch()
                    next_check = now + EPOCH_CHECK_EVERY
                    if self.last_id is None:
                        self.last_id = self._stream_end()
                    self._trim()
                reply = self.reader.xread({self.stream: self.last_id},
                                          count=READ_COUNT, block=BLOCK_MS)
            except redis.RedisError as exc:
                if down_since is None:
                    down_since = time.monotonic()
                    self.stats['outages'] += 1
                    self._down(exc)
                self.server.sleep(REDIS_RETRY)
                continue
            if down_since is not None:
                log.info('Redis answers again after %.1fs; the outbox has %d '
                         'messages to write', time.monotonic() - down_since,
                         len(self.outbox))
                down_since = None
            if not self.redis_up and not self.outbox:   # also after a failed start
                self.redis_up = True
            for _stream, entries in reply or ():
                for entry_id, fields in entries:
                    self.last_id = entry_id.decode()
                    self._dispatch(self.last_id, fields.get(b'm'))

    def _trim(self):
        """The age limit (XADD's MAXLEN is the length limit)."""
        if self.max_age:
            floor = int((time.time() - self.max_age) * 1000)
            self.redis.xtrim(self.stream, minid=f'{floor}-0', approximate=True)

    def _dispatch(self, offset, raw):
        try:
            message = self.json.loads(raw)
            method = message['method']
            if method == 'callback':
                return self._handle_callback(message)
            if message.get('host_id') == self.host_id:
                return None
            if method == 'emit':
                if self.seen.first(message):
                    return self._handle_emit(message, offset)
                self.stats['duplicates_dropped'] += 1   # written twice
                return None
            handler = {'disconnect': self._handle_disconnect,
                       'enter_room': self._handle_enter_room,
                       'leave_room': self._handle_leave_room,
                       'close_room': self._handle_close_room}.get(method)
            if handler:
                return handler(message)
        except Exception:
            log.exception('stream entry %s could not be handled', offset)
        return None

    def _handle_emit(self, message, offset=None):
        if message.get('callback') is not None:
            return super()._handle_emit(message)
        data = event_args(message)
        data = data[0] if len(data) == 1 else tuple(data)
        if offset:  # its milliseconds are when it was added
            self.metrics.adapter_lag(int(offset.split('-', 1)[0]) / 1000)
        if self.recovery is None:
            offset = None
        return FanoutManager.emit(self, message['event'], data, message.get('namespace') or '/',
                                  room=message.get('room'), skip_sid=message.get('skip_sid'),
                                  offset=offset)

    # -- rooms: a recoverable session's rooms are saved on every change -----
    def enter_room(self, sid, namespace, room, eio_sid=None):
        super().enter_room(sid, namespace, room, eio_sid=eio_sid)
        if self.recovery is not None:
            self.recovery.changed(sid, namespace, joined=room)

    def leave_room(self, sid, namespace, room):
        super().leave_room(sid, namespace, room)
        if self.recovery is not None:
            self.recovery.changed(sid, namespace, left=room)

    def _handle_close_room(self, message):
        ns = message.get('namespace') or '/'
        members = [sid for sid, _ in self.get_participants(
            ns, message.get('room'))] if self.recovery else []
        super()._handle_close_room(message)
        for sid in members:
            self.recovery.changed(sid, ns, left=message.get('room'))

    def pre_connect(self, eio_sid, namespace):
        wanted = self.wanted_sid.pop(eio_sid, None)
        if wanted is None:
            return super().pre_connect(eio_sid, namespace)
        self.basic_enter_room(wanted, namespace, None, eio_sid=eio_sid)
        self.basic_enter_room(wanted, namespace, wanted, eio_sid=eio_sid)
        self.pending_connect.setdefault(namespace, []).append(wanted)
        return wanted

    def disconnect(self, sid, namespace=None, **kwargs):
        if self.server is None:  # write-only: only the instances can
            return self._publish({'method': 'disconnect', 'sid': sid,
                                  'namespace': namespace or '/', 'host_id': self.host_id})
        super().disconnect(sid, namespace=namespace, **kwargs)
        if kwargs.get('ignore_queue') and self.recovery is not None:
            self.recovery.gone(sid, namespace or '/')

    def health(self) -> dict:
        return {'stream': self.stream, 'redis_up': self.redis_up, 'outbox': len(self.outbox),
                'deduped': self.deduped, **self.stats, **self.outbox.stats}

