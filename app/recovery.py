"""Socket.IO v5 connection-state recovery, server side, across instances.

What socket.io-client expects (packages/socket.io-client/lib/socket.ts): the
CONNECT reply carries a private `pid`; every broadcast event carries its
offset as its last argument (the client keeps the last one); a reconnecting
client sends `{pid, offset}` in its CONNECT payload and sets
`socket.recovered` when the reply brings the same pid back.

Here the session (pid -> sid, namespace, rooms, epoch, owner) is a Redis hash
written whenever it changes, not only on a clean disconnect, so a SIGKILLed
instance's clients recover too, on any instance. A recovering client is
replayed the stream entries after its offset that were addressed to it, in
order and once, before any live traffic (held meanwhile in the fan-out).
RECOVERY_WINDOW bounds how long a session waits; the stream's retention
bounds what it can get back; past either the client gets a new session.
"""
import json
import logging
import secrets
from dataclasses import dataclass, field

import redis
from socketio import packet

from app.streams import StreamsManager, event_args, parse_offset

PAGE = 1000           # XRANGE entries per round trip when replaying
MAX_PAGES = 200       # a replay reads at most this many pages
GOODBYES = ('client disconnect', 'server disconnect', None)

# Write the whole record, unless another instance has claimed it since.
SAVE = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'sid', ARGV[3], 'nsp', ARGV[4],
           'rooms', ARGV[5], 'epoch', ARGV[6], 'start', ARGV[7])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""
# Shorten (or, with ttl 0, end) a record this instance still owns.
EXPIRE = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then redis.call('DEL', KEYS[1])
else redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
"""
# Take a record over: from now on its old owner cannot change it.
CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return redis.call('HGETALL', KEYS[1])
"""

log = logging.getLogger('app.recovery')


@dataclass
class Session:
    """A recoverable session of this instance."""
    pid: str
    namespace: str
    epoch: str
    start: str                      # stream position when it began
    rooms: set = field(default_factory=set)


def _after(a: str, b: str) -> bool:
    return parse_offset(a) > parse_offset(b)


class Recovery:
    """The protocol, hooked into InstanceServer and StreamsManager."""

    def __init__(self, server, manager: StreamsManager, window: int):
        self.server, self.manager, self.window = server, manager, window
        self.period = max(0.5, min(30.0, window / 4))
        self.ttl = window + int(self.period) + 1
        self.prefix = f'{manager.channel}:session:'
        self.sessions = {}          # sid -> Session
        self.pending = {}           # (eio_sid, namespace) -> (pid, restored)
        self.reasons = {}           # sid -> why it is disconnecting
        self.dirty = set()          # sids whose record could not be written
        self.stats = manager.stats
        r = manager.redis
        self._save, self._expire, self._claim = (
            r.register_script(SAVE), r.register_script(EXPIRE),
            r.register_script(CLAIM))
        manager.recovery = self
        server.recovery = self

    def start(self):
        self.server.start_background_task(self._refresh_loop)

    # -- the CONNECT handshake --------------------------------------------
    def before_connect(self, eio_sid, namespace, data):
        """Take pid/offset out of the CONNECT payload; try to restore."""
        pid = offset = restored = None
        if isinstance(data, dict) and 'pid' in data:
            data = dict(data)
            pid, offset = data.pop('pid'), data.pop('offset', None)
            data = data or None
            restored = self._restore(pid, offset, namespace)
        if restored:
            sid = restored['sid']
            self.manager.holding[sid] = []      # live traffic waits for replay
            self.manager.wanted_sid[eio_sid] = sid
            self._evict(sid, namespace)
        new_pid = restored['pid'] if restored else secrets.token_urlsafe(16)
        self.pending[(eio_sid, namespace)] = (new_pid, restored)
        return data

    def connect_reply(self, eio_sid, pkt):
        pending = self.pending.get((eio_sid, pkt.namespace or '/'))
        if pending and isinstance(pkt.data, dict):
            pkt.data = {**pkt.data, 'pid': pending[0]}

    def after_connect(self, eio_sid, namespace):
        pid, restored = self.pending.pop((eio_sid, namespace), (None, None))
        self.manager.wanted_sid.pop(eio_sid, None)
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if pid is None or sid is None or \
                not self.manager.is_connected(sid, namespace):
            if restored:
                self.manager.holding.pop(restored['sid'], None)
            return
        if restored:
            session = Session(pid, namespace, restored['epoch'],
                              restored['start'], set(restored['rooms']))
        else:
            session = Session(pid, namespace, self.manager.epoch or '',
                              self.manager.last_id or '0-0')
        self.sessions[sid] = session
        if restored:
            self._replay(sid, eio_sid, restored)
        self._write(sid)

    # -- restoring ----------------------------------------------------------
    def _refuse(self, pid, why):
        self.stats['recovery_refused'] += 1
        log.info('recovery refused (%s): pid %.6s… gets a new session', why,
                 pid if isinstance(pid, str) else '?')

    def _restore(self, pid, offset, namespace):
        if not isinstance(pid, str) or not 8 <= len(pid) <= 64:
            return self._refuse(pid, 'malformed pid')
        if offset is not None and parse_offset(offset) is None:
            return self._refuse(pid, 'malformed offset')
        key = self.prefix + pid
        try:
            found = self._claim(keys=[key], args=[self.manager.host_id,
                                                   self.ttl])
            if not found:
                return self._refuse(pid, 'unknown pid, or away longer than '
                                         'RECOVERY_WINDOW')
            rec = {found[i].decode(): found[i + 1].decode()
                   for i in range(0, len(found), 2)}
            why = None
            if rec.get('epoch') != self.manager.epoch:
                why = 'Redis was emptied since (epoch)'
            elif rec.get('nsp') != namespace:
                why = 'another namespace'
            else:
                offset = offset or rec['start']
                if not self._retained(offset):
                    why = 'past the stream retention'
            if why:
                self.manager.redis.delete(key)
                return self._refuse(pid, why)
        except (redis.RedisError, KeyError, ValueError) as exc:
            return self._refuse(pid, f'error: {exc}')
        return {'pid': pid, 'sid': rec['sid'], 'offset': offset,
                'rooms': json.loads(rec['rooms']), 'epoch': rec['epoch'],
                'start': rec['start']}

    def _retained(self, offset) -> bool:
        """Whether every entry after offset is still in the stream."""
        try:
            info = self.manager.redis.xinfo_stream(self.manager.stream)
        except redis.ResponseError:     # no stream: nothing after anything
            return True
        deleted = info.get('max-deleted-entry-id')
        if isinstance(deleted, bytes):
            deleted = deleted.decode()
        if deleted and parse_offset(deleted) and _after(deleted, offset):
            return False
        first = info.get('first-entry')
        return first is None or deleted is not None or \
            not _after(first[0].decode(), offset)

    def _evict(self, sid, namespace):
        """The sid's old connection, here or elsewhere, must go (a client
        that changed instance before its old one noticed)."""
        self.sessions.pop(sid, None)
        if self.manager.is_connected(sid, namespace):
            self.server.disconnect(sid, namespace, ignore_queue=True)
        else:
            self.manager._publish({'method': 'disconnect', 'sid': sid,
                                   'namespace': namespace,
                                   'host_id': self.manager.host_id})

    def _missed(self, sid, namespace, restored):
        rooms = set(restored['rooms']) | {sid}
        cursor, out = '(' + restored['offset'], []
        for _ in range(MAX_PAGES):
            entries = self.manager.redis.xrange(self.manager.stream, min=cursor,
                                                max='+', count=PAGE)
            for entry_id, fields in entries:
                cursor = '(' + entry_id.decode()
                msg = json.loads(fields[b'm'])
                if _addressed(msg, namespace, sid, rooms):
                    out.append((entry_id.decode(), msg))
            if len(entries) < PAGE:
                break
        return out

    def _replay(self, sid, eio_sid, restored):
        ns = self.sessions[sid].namespace
        for room in restored['rooms']:
            self.manager.basic_enter_room(sid, ns, room)
        try:
            missed = self._missed(sid, ns, restored)
        except redis.RedisError as exc:
            # Recovered, but the replay cannot be read: drop the transport so
            # the client comes back and tries again (its record stays).
            self.manager.holding.pop(sid, None)
            self.stats['recovery_aborted'] += 1
            log.warning('replay for %s failed (%s); closing it to retry', sid,
                        exc)
            self.server.eio.disconnect(eio_sid)
            return
        last = restored['offset']
        for offset, msg in missed:
            self.server._send_packet(eio_sid, self.server.packet_class(
                packet.EVENT, namespace=ns,
                data=[msg['event'], *event_args(msg), offset]))
            last = offset
        for offset, eio_pkt in self.manager.holding.pop(sid, ()):
            if offset is None or _after(offset, last):
                self.server._send_eio_packet(eio_sid, eio_pkt)
        self.stats['recovered'] += 1
        self.stats['replayed'] += len(missed)
        log.info('recovered %s: %d rooms, %d missed events replayed', sid,
                 len(restored['rooms']), len(missed))

    # -- saving ---------------------------------------------------------------
    def changed(self, sid, namespace, joined=None, left=None):
        session = self.sessions.get(sid)
        if session is None or session.namespace != namespace:
            return
        if joined is not None and joined != sid:
            session.rooms.add(joined)
        if left is not None:
            session.rooms.discard(left)
        self._write(sid)

    def _args(self, sid, s: Session):
        return [self.manager.host_id, self.ttl, sid, s.namespace,
                json.dumps(sorted(s.rooms)), s.epoch, s.start]

    def _write(self, sid, client=None):
        session = self.sessions.get(sid)
        if session is None:
            return
        if not self.manager.redis_up and client is None:
            self.dirty.add(sid)
            return
        try:
            self._save(keys=[self.prefix + session.pid],
                       args=self._args(sid, session), client=client)
            self.dirty.discard(sid)
        except redis.RedisError:
            self.dirty.add(sid)

    def closing(self, eio_sid, namespace, reason):
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid in self.sessions:
            self.reasons[sid] = reason

    def gone(self, sid, namespace):
        """The session left this instance: a goodbye ends the record, a lost
        transport starts its RECOVERY_WINDOW."""
        session = self.sessions.pop(sid, None)
        reason = self.reasons.pop(sid, None)
        self.dirty.discard(sid)
        if session is None:
            return
        ttl = 0 if reason in GOODBYES else self.window
        try:
            self._expire(keys=[self.prefix + session.pid],
                         args=[self.manager.host_id, ttl])
        except redis.RedisError:
            pass

    def _refresh_loop(self):
        """Keep live sessions' records alive; write those Redis missed."""
        while True:
            self.server.sleep(self.period)
            if not self.manager.redis_up or not self.sessions:
                continue
            try:
                pipe = self.manager.redis.pipeline(transaction=False)
                for sid, session in list(self.sessions.items()):
                    self._save(keys=[self.prefix + session.pid],
                               args=self._args(sid, session), client=pipe)
                pipe.execute()
                self.dirty.clear()
            except redis.RedisError as exc:
                log.warning('could not refresh session records: %s', exc)


def _addressed(msg, namespace, sid, rooms) -> bool:
    """Whether a stream entry was an event for this session."""
    if msg.get('method') != 'emit' or msg.get('callback') is not None or \
            (msg.get('namespace') or '/') != namespace:
        return False
    skip = msg.get('skip_sid')
    if skip == sid or (isinstance(skip, list) and sid in skip):
        return False
    room = msg.get('room')
    if room is None:
        return True
    if isinstance(room, list):
        return any(r in rooms for r in room)
    return room in rooms


def enable(server, manager: StreamsManager, window: int) -> Recovery:
    """Turn recovery on for this instance (RECOVERY_WINDOW > 0)."""
    recovery = Recovery(server, manager, window)
    recovery.start()
    return recovery
