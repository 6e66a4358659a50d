"""Socket.IO v5 connection-state recovery, server side, across instances.

What socket.io-client expects (packages/socket.io-client/lib/socket.ts): the
CONNECT reply carries a private `pid`; every broadcast event carries its
offset as its last argument (the client keeps the last one); a reconnecting
client sends `{pid, offset}` in its CONNECT payload and sets
`socket.recovered` when the reply brings the same pid back.

Here the session (pid -> sid, namespace, rooms, epoch, owner, and the app's
session data: socketio_kit/recovery/session_data.py) is a Redis hash written whenever it
changes, not only on a clean disconnect, so a SIGKILLed instance's clients
recover too, on any instance, with their data. A recovering client is replayed
the stream entries after its offset that were addressed to it, in order and
once, before any live traffic (held meanwhile in the fan-out). RECOVERY_WINDOW
bounds how long a session waits; the stream's retention bounds what it can get
back; past either the client gets a new session.
"""
import json
import logging
import secrets
import time

import redis
from socketio import packet

from socketio_kit.cluster.entries import after, event_args, parse_offset
from socketio_kit.cluster.streams import StreamsManager
from socketio_kit.observability.logs import fields
from socketio_kit.policy.binding import client_address
from socketio_kit.recovery import replay
from socketio_kit.recovery.session_data import SessionData
from socketio_kit.recovery.sessions import ALIVE_TTL_MS, Session, SessionStore

GOODBYES = ('client disconnect', 'server disconnect', None)

log = logging.getLogger('socketio_kit.recovery')


class Recovery:
    """The protocol, hooked into socketio_kit.Server and StreamsManager."""

    def __init__(self, server, manager: StreamsManager, window: int, max_data: int,
                 max_missed: int):
        """Recovery on (RECOVERY_WINDOW > 0), once start() runs; max_data:
        MAX_PAYLOAD_BYTES, max_missed: MAX_CLIENT_BUFFER_BYTES."""
        self.server, self.manager, self.window = server, manager, window
        self.max_missed, self.scan = max_missed, replay.ScanBudget()
        self.data = SessionData(server.eio, max_data)
        self._metrics = manager.metrics  # socketio_kit.observability.metrics, or its null stand-in
        self.period = max(0.5, min(30.0, window / 4))
        self.ttl = window + int(self.period) + 1
        self.store = SessionStore(manager.redis, manager.channel,
                                  manager.host_id, self.ttl)
        self.sessions = {}          # sid -> Session
        self.pending = {}           # (eio_sid, namespace) -> (pid, restored)
        self.reasons = {}           # sid -> why it is disconnecting
        self.dirty = set()          # sids whose record could not be written
        self.stats = manager.stats
        manager.recovery = self
        server.recovery = self

    def start(self):
        self.server.start_background_task(self._refresh_loop)
        self.server.start_background_task(self.store.keep_alive, self.server.sleep)

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
            self.data.put_back(eio_sid, namespace, restored['data'])
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
            restored['rooms'] = self._enter_rooms(sid, namespace, restored['rooms'])
            session = Session(pid, namespace, restored['epoch'],
                              restored['start'], recovered=True)
        else:
            session = Session(pid, namespace, self.manager.epoch or '',
                              self.manager.last_id or '')
        # What it holds now: its restored rooms and what its connect handler joined.
        session.rooms = set(self.manager.joined_rooms(sid, namespace))
        session.data = self.data.snapshot(eio_sid, namespace, sid)
        self.sessions[sid] = session
        if restored:
            self._replay(sid, eio_sid, restored)
        self._write(sid)

    # -- restoring ----------------------------------------------------------
    def _refuse(self, pid, why):
        self.stats['recovery_refused'] += 1
        # Expired: what a client may lose by design (away too long, the
        # stream trimmed or emptied); unknown: anything else.
        expired = why.startswith(('unknown pid', 'Redis was emptied', 'past the'))
        self._metrics.recovery('expired' if expired else 'unknown')
        log.info('recovery refused (%s): the client gets a new session', why,
                 extra=fields(event='recovery_refused', reason=why))

    def _restore(self, pid, offset, namespace):
        if not isinstance(pid, str) or not 8 <= len(pid) <= 64:
            return self._refuse(pid, 'malformed pid')
        if offset is not None and parse_offset(offset) is None:
            return self._refuse(pid, 'malformed offset')
        try:
            rec = self._claim(pid)
            if rec is None:
                return self._refuse(pid, 'unknown pid, or away longer than '
                                         'RECOVERY_WINDOW')
            if rec == 'busy' or rec['sid'] in self.sessions:
                return self._refuse(pid, 'the session is still connected')
            why = None
            if rec.get('epoch') != self.manager.epoch:
                why = 'Redis was emptied since (epoch)'
            elif rec.get('nsp') != namespace:
                why = 'another namespace'
            else:
                # Nothing from before the session began (an older offset
                # would replay a room's past, and cost more to read).
                if not offset or (rec['start'] and after(rec['start'], offset)):
                    offset = rec['start']
                if not offset:
                    why = 'no offset'
                elif not replay.retained(self.manager.redis,
                                       self.manager.stream, offset):
                    why = 'past the stream retention'
            if why:
                self.store.forget(pid)
                return self._refuse(pid, why)
        except (redis.RedisError, KeyError, ValueError) as exc:
            return self._refuse(pid, f'error: {exc}')
        return {'pid': pid, 'sid': rec['sid'], 'offset': offset,
                'rooms': json.loads(rec['rooms']), 'epoch': rec['epoch'],
                'start': rec['start'], 'data': rec.get('data', '')}

    def _claim(self, pid):
        """Claim the record; while its old instance may still be alive (it
        was SIGKILLed less than ALIVE_TTL_MS ago), ask again."""
        deadline = time.monotonic() + ALIVE_TTL_MS / 1000 + 0.3
        while True:
            rec = self.store.claim(pid)
            if rec != 'busy' or time.monotonic() > deadline:
                return rec
            self.server.sleep(0.1)

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

    def was_recovered(self, sid, namespace) -> bool:
        """Whether sid's connection in namespace recovered a session: asked
        in its connect handler (pending) or later (its Session)."""
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace)
        pending = self.pending.get((eio_sid, namespace))
        if pending is not None:
            return bool(pending[1])
        session = self.sessions.get(sid)
        return bool(session is not None and session.namespace == namespace
                    and session.recovered)

    def _enter_rooms(self, sid, namespace, rooms):
        """Put the session's rooms back through the server's room admission
        (the count includes the rooms its connect handler joined); the rooms
        it refuses are left out, with one line."""
        admitted = []
        for room in rooms:
            why = self.server.admission.refusal(self.manager, sid, namespace, room,
                                                self.server.claims(sid, namespace))
            if why:
                log.info('recovered %s without room %r: %s', sid, room, why,
                         extra=fields(sid=sid, event='room_refused'))
                continue
            self.manager.basic_enter_room(sid, namespace, room)
            admitted.append(room)
        return admitted

    def _replay(self, sid, eio_sid, restored):
        ns = self.sessions[sid].namespace
        address = client_address(self.server.environ.get(eio_sid) or {})
        try:
            missed = replay.missed(
                self.manager.redis, self.manager.stream, ns, sid, restored['rooms'],
                restored['offset'], self.max_missed, self.scan.bucket(address),
                lambda: self.server.sleep(0))
        except (replay.TooMuch, redis.RedisError) as exc:
            # No replay: drop the transport. Too much to replay: the record
            # goes, and the client comes back to a new session; Redis failed:
            # the record stays, and it comes back to try again.
            self.manager.holding.pop(sid, None)
            if isinstance(exc, replay.TooMuch):
                self.store.forget(restored['pid'])
                self._refuse(restored['pid'], str(exc))
            else:
                self.stats['recovery_aborted'] += 1
                log.warning('replay for %s failed (%s); closing it to retry', sid, exc)
            self.server.eio.disconnect(eio_sid)
            return
        self.manager.settle()   # their local delivery lands in holding
        last = restored['offset']
        for offset, msg in missed:
            self.server._send_packet(eio_sid, self.server.packet_class(
                packet.EVENT, namespace=ns,
                data=[msg['event'], *event_args(msg), offset]))
            last = offset
        for offset, eio_pkt in self.manager.holding.pop(sid, ()):
            if offset is None or after(offset, last):
                self.server._send_eio_packet(eio_sid, eio_pkt)
        # Belt and braces: nothing up to `last` goes to it again.
        self.manager.floors[sid] = parse_offset(last)
        self.server.start_background_task(self._unfloor, sid, parse_offset(last))
        self.stats['recovered'] += 1
        self._metrics.recovery('recovered')
        self.stats['replayed'] += len(missed)
        log.info('recovered %s: %d rooms, %d missed events replayed', sid,
                 len(restored['rooms']), len(missed),
                 extra=fields(sid=sid, event='recovered'))

    def _unfloor(self, sid, position, after_s=3.0):
        self.server.sleep(after_s)
        if self.manager.floors.get(sid) == position:
            del self.manager.floors[sid]

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

    def saved(self, sid, namespace, value):
        """The app saved the client's session (socketio_kit.Server.save_session)."""
        if self.data.changed(self.sessions.get(sid), namespace, sid, value):
            self._write(sid)

    def _write(self, sid, client=None):
        session = self.sessions.get(sid)
        if session is None:
            return
        # Begun while Redis did not answer: it belongs to the epoch and
        # stream position the instance learns once it does.
        session.epoch = session.epoch or self.manager.epoch or ''
        session.start = session.start or self.manager.last_id or ''
        if not self.manager.redis_up and client is None:
            self.dirty.add(sid)
            return
        try:
            self.store.save(sid, session, client=client)
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
            self.store.release(session.pid, ttl)
        except redis.RedisError:
            pass

    def _refresh_loop(self):
        """Write the records Redis missed (within half a second of it
        answering again), and keep every live session's record alive."""
        next_refresh = time.monotonic() + self.period
        while True:
            self.server.sleep(0.5)
            refresh = time.monotonic() >= next_refresh
            if not self.manager.redis_up or not (self.dirty or refresh):
                continue
            sids = list(self.sessions) if refresh else list(self.dirty)
            try:
                pipe = self.manager.redis.pipeline(transaction=False)
                for sid in sids:
                    self._write(sid, client=pipe)
                pipe.execute()
                self.dirty.difference_update(sids)
                if refresh:
                    next_refresh = time.monotonic() + self.period
            except redis.RedisError as exc:
                self.dirty.update(sid for sid in sids if sid in self.sessions)
                log.warning('could not write session records: %s', exc)
