"""redis-outage: a steady broadcast while Redis is stopped for --outage-s
seconds and started again (make local-stop/local-start INSTANCE=redis, or the
compose service through the Docker SDK). Every client should stay connected;
nothing should be missed or doubled; what was emitted during the outage
crosses instances once Redis answers (its latency shows when)."""
import time

from loadtest import merge
from loadtest.pool import RunError
from loadtest.run import Run
from loadtest.scenarios.reconnect import during_broadcast, losses

NEEDS_CONTROLLER = True


def run(r: Run):
    cfg = r.cfg
    replies = r.connect(join=True)

    def outage(times):
        r.controller.stop('redis')
        times['stopped_at'] = time.time()
        time.sleep(max(0.0, cfg.outage_s - (times['stopped_at'] - times['at'])))
        r.controller.start('redis')
        times['answering_at'] = time.time()

    t0, tallies, times = during_broadcast(r, replies, outage)
    if 'error' in times:
        raise RunError(f'could not stop/start redis: {times["error"]}')
    down_s = times['answering_at'] - times['at']
    # Latencies are sampled (--latency-every); the oldest message of the
    # outage waited the whole outage, then until delivery resumed.
    worst = max(((t['cross'] or {}).get('max') or 0.0) for t in tallies)
    r.result['redis_outage'] = {
        'controller': r.controller.kind, 'recover': cfg.recover,
        'stop_at_s': round(times['at'] - t0, 3), 'outage_s': round(down_s, 3),
        'cross_latency_max_s': round(worst, 3),
        'resumed_after_redis_s': round(max(0.0, worst - down_s), 3) if worst else None,
        **losses(tallies, times['at'], lambda c: True)}
    r.result['timeline'] = merge.merge_timeline([t['timeline'] for t in tallies], t0)
    r.result['timeline']['kill_at'] = round(times['at'] - t0, 3)
