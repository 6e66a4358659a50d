"""Recoverable sessions in Redis: one hash per pid, owned by one instance.

`{key}:session:PID` holds sid, namespace, rooms, the application's session
data (python-socketio's save_session, as JSON: socketio_kit/recovery/session_data.py), epoch,
the stream position the session began at, its owner (an instance's host id)
and whether it is live. The owner rewrites it on every change and keeps it
alive; a lost transport starts its RECOVERY_WINDOW; a goodbye deletes it.
Another instance may claim it only when it is not live on a running instance
(each instance keeps `{key}:alive:HOST` fresh), so a pid cannot take over a
session that is still connected.
"""
import json
from dataclasses import dataclass, field

import redis

ALIVE_EVERY = 0.25     # seconds between an instance's alive-key refreshes
ALIVE_TTL_MS = 1000    # an instance silent this long counts as gone

# Write the whole record, unless another instance has claimed it since.
SAVE = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'live', '1', 'sid', ARGV[3],
           'nsp', ARGV[4], 'rooms', ARGV[5], 'epoch', ARGV[6], 'start', ARGV[7],
           'data', ARGV[8])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""
# The session left its owner: shorten the record's life (ttl 0: delete it).
RELEASE = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then redis.call('DEL', KEYS[1]) return 1 end
redis.call('HSET', KEYS[1], 'live', '0')
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""
# Take a record over, unless it is live on another running instance.
CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner ~= ARGV[1] and redis.call('HGET', KEYS[1], 'live') == '1'
   and redis.call('EXISTS', ARGV[3] .. owner) == 1 then return 'busy' end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'live', '1')
redis.call('EXPIRE', KEYS[1], ARGV[2])
return redis.call('HGETALL', KEYS[1])
"""


@dataclass
class Session:
    """A recoverable session connected to this instance."""
    pid: str
    namespace: str
    epoch: str
    start: str                      # stream position when it began
    rooms: set = field(default_factory=set)
    data: str = ''                  # the app's session as JSON ('': none)
    recovered: bool = False         # this connection recovered an earlier one


class SessionStore:
    """The records of one instance's sessions (see the module docstring)."""

    def __init__(self, redis_client, key: str, host_id: str, ttl: int):
        self.redis, self.host_id, self.ttl = redis_client, host_id, ttl
        self.prefix = f'{key}:session:'
        self.alive_prefix = f'{key}:alive:'
        self._save = redis_client.register_script(SAVE)
        self._release = redis_client.register_script(RELEASE)
        self._claim = redis_client.register_script(CLAIM)

    def save(self, sid: str, s: Session, client=None):
        self._save(keys=[self.prefix + s.pid], client=client, args=[
            self.host_id, self.ttl, sid, s.namespace,
            json.dumps(sorted(s.rooms)), s.epoch, s.start, s.data])

    def release(self, pid: str, ttl: int):
        self._release(keys=[self.prefix + pid], args=[self.host_id, ttl])

    def claim(self, pid: str):
        """The record as a dict, 'busy' if live elsewhere, or None."""
        found = self._claim(keys=[self.prefix + pid],
                            args=[self.host_id, self.ttl, self.alive_prefix])
        if not found or found == b'busy':
            return found and 'busy'
        return {found[i].decode(): found[i + 1].decode()
                for i in range(0, len(found), 2)}

    def forget(self, pid: str):
        self.redis.delete(self.prefix + pid)

    def keep_alive(self, sleep):
        """Tell other instances this one runs (CLAIM reads it), for ever:
        `sleep` is the worker's green sleep."""
        while True:
            try:
                self.redis.set(self.alive_prefix + self.host_id, 1, px=ALIVE_TTL_MS)
            except redis.RedisError:
                pass
            sleep(ALIVE_EVERY)
