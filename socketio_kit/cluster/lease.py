"""A task that runs on exactly one instance of the cluster at a time.

`sio.start_cluster_task(fn)` starts a ClusterTask on every instance; each
tries to take a lease in Redis (`<key>:lease:<name>`, SET NX PX). The one
that gets it runs `fn` in a background task and renews the lease every
third of LEASE_SECONDS; the others keep trying. When the holder dies its
lease expires and another instance takes over within LEASE_SECONDS.

Fencing: a holder that cannot renew (Redis says someone else holds the
lease, or Redis has not answered for a whole lease) kills its task at the
task's next yield (`sio.sleep`) before another instance can have taken the
lease, so two never run it at once. Each acquisition also gets a fencing
token (`task.fence`, increasing across the cluster) for the application to
stamp on what the task writes elsewhere.
"""
import logging
import time

import redis

from socketio_kit.observability.logs import fields

log = logging.getLogger('socketio_kit.cluster')

LEASE_SECONDS = 3.0

# Renew (or release) only a lease this holder still holds.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class ClusterTask:
    """One cluster-wide task on this instance: taking, holding and losing
    its lease, and running the application's function while it holds it."""

    def __init__(self, server, manager, target, args=(), kwargs=None,
                 name=None, lease_seconds=LEASE_SECONDS):
        self.server, self.target = server, target
        self.args, self.kwargs = tuple(args), dict(kwargs or {})
        self.name = name or f'{target.__module__}.{target.__qualname__}'
        self.redis = manager.redis
        self.key = f'{manager.channel}:lease:{self.name}'
        self.fence_key = self.key + ':fence'
        self.me = f'{server.instance_name}:{manager.host_id}'
        self.lease_ms = int(lease_seconds * 1000)
        self.holding = False
        self.fence = None
        self.stopped = False
        self._thread = None
        self._renew = self.redis.register_script(RENEW)
        self._release = self.redis.register_script(RELEASE)

    def start(self):
        self.server.start_background_task(self._loop)

    def _loop(self):
        period = self.lease_ms / 3000
        last_renewed = 0.0
        while not self.stopped:
            try:
                if self.holding:
                    if self._renew(keys=[self.key], args=[self.me, self.lease_ms]):
                        last_renewed = time.monotonic()
                    else:
                        self._lose('another instance holds the lease')
                elif self.redis.set(self.key, self.me, nx=True, px=self.lease_ms):
                    last_renewed = time.monotonic()
                    self._take()
            except redis.RedisError as exc:
                # The lease may expire while Redis is away: stop before it
                # could, so a new holder never overlaps this one.
                if self.holding and time.monotonic() - last_renewed > \
                        self.lease_ms / 1000 - period:
                    self._lose(f'Redis does not answer ({exc})')
            self.server.sleep(period)

    def _take(self):
        self.fence = self.redis.incr(self.fence_key)
        self.holding = True
        log.info('cluster task %s runs here (fence %d)', self.name, self.fence,
                 extra=fields(event='cluster_task'))
        self._thread = self.server.start_background_task(self._run)

    def _run(self):
        try:
            self.target(*self.args, **self.kwargs)
        except Exception:   # the application's bug: one line, lease kept
            log.exception('cluster task %s failed; it is not restarted', self.name)

    def _lose(self, why):
        log.warning('cluster task %s stopped here: %s', self.name, why,
                    extra=fields(event='cluster_task'))
        self.holding = False
        thread, self._thread = self._thread, None
        if thread is not None:
            # python-engineio's eventlet thread keeps its GreenThread in `g`;
            # its gevent thread is a Greenlet. Both die at their next yield.
            getattr(thread, 'g', thread).kill()

    def stop(self):
        """Stop the task here and hand the lease on at once (on drain)."""
        self.stopped = True
        if self.holding:
            self._lose('the instance is stopping')
            try:
                self._release(keys=[self.key], args=[self.me])
            except redis.RedisError:
                pass
