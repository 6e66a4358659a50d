"""slow-consumer: one room of N clients receives broadcasts twice, first as
they are, then with one extra member that joined over a bare socket and never
reads again. It reports the other clients' delivery and p99 in both windows,
every instance's RSS over time (the controller's reading, as ramp uses), and
whether the server disconnected the member that stopped reading."""
import threading
import time

from loadtest.pool import RunError
from loadtest.rawclient import RawClient
from loadtest.run import Run

NEEDS_CONTROLLER = False


def _window_summary(r: Run) -> dict:
    d = r.result['delivery']
    return {'delivery_ratio': d['delivery_ratio'], 'received': d['received'],
            'expected': d['expected'], 'delivered_per_second': d['delivered_per_second'],
            'duplicates': d['duplicates'], 'out_of_order': d['out_of_order'],
            'latency_ms': d['latency_ms']['all']}


class RssSampler(threading.Thread):
    """Every `every` s, each instance's RSS (MiB) and the slow socket's state."""

    def __init__(self, r: Run, every: float, seconds: float):
        super().__init__(daemon=True)
        self.r, self.every, self.seconds = r, every, seconds
        self.t0 = time.time()
        self.samples, self.slow = [], None
        self.stop = threading.Event()

    def run(self):
        names = self.r.controller.instances()
        for _ in range(int(self.seconds / self.every) + 1):  # bounded by the run
            rss = {n: self.r.controller.rss(n) for n in names}
            sample = {'t': round(time.time() - self.t0, 2),
                      'rss_mib': {n: round(v / 1048576, 1) for n, v in rss.items() if v}}
            if self.slow is not None:
                sample['slow_socket'] = self.slow.snapshot()
            self.samples.append(sample)
            if self.stop.wait(self.every):
                return


def run(r: Run):
    cfg = r.cfg
    replies = r.connect(join=True)
    budget = 2 * (cfg.duration + cfg.drain) + cfg.ack_timeout + 120
    sampler = RssSampler(r, cfg.rss_every, budget)
    sampler.start()
    try:
        r.send(replies)
        baseline, baseline_valid = _window_summary(r), not r.problems
        slow = RawClient(cfg.url, cfg.path, cfg.origin, cfg.offers_deflate)
        try:
            slow.join(cfg.room, cfg.connect_timeout)
        except (OSError, ConnectionError, TimeoutError) as exc:
            raise RunError(f'the slow consumer could not join: {exc}') from None
        joined_at = round(time.time() - sampler.t0, 2)
        sampler.slow = slow
        r.send(replies)
        with_slow = _window_summary(r)
        stalled = slow.snapshot()
        ended = slow.drain(5.0)
        slow.close()
    finally:
        sampler.stop.set()
        sampler.join(30)
    p99_before, p99_after = baseline['latency_ms']['p99'], with_slow['latency_ms']['p99']
    r.result['slow_consumer'] = {
        'baseline': baseline, 'baseline_valid': baseline_valid,
        'with_slow_consumer': with_slow,
        'p99_change': round(p99_after / p99_before - 1, 3)
        if p99_before and p99_after else None,
        'slow_instance': slow.instance, 'slow_joined_at_s': joined_at,
        'slow_socket_at_end': stalled, 'slow_socket_read_after': ended,
        'server_disconnected_slow_consumer': ended['ended'] != 'still open',
        'rss_timeline': sampler.samples, 'rss_source': r.controller.kind}
    if not any(s['rss_mib'] for s in sampler.samples):
        r.warnings.append('no instance RSS available (use --kill-via native|docker '
                          'to say where the instances run)')
