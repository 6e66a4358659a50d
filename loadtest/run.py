"""The coordinator's shared phases: describe the cluster, connect the
clients, run the senders, add up deliveries, and read the cluster's CPU.
Each scenario (scenarios/) strings these together."""
import json
import sys
import time
import urllib.request
from dataclasses import asdict
from typing import Callable, List, Optional

from control.base import KIT_PREFIX
from loadtest import checks, environment, merge
from loadtest.config import Config
from loadtest.control import Controller
from loadtest.pool import Pool, RunError, split
from loadtest.progress import Progress


def get_json(url: str, timeout: float = 3.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read().decode())
    except Exception as exc:  # any failure is reported, not raised
        return None, str(exc)


def cluster_shape(cfg: Config, controller: Controller) -> dict:
    """Which instances answer through the balancer, before the run."""
    base = cfg.url.rstrip('/')
    status, body = get_json(f'{base}{KIT_PREFIX}/healthz')
    shape = {'url': cfg.url, 'balancer_healthz': body if status == 200 else
             f'error: {body}', 'controller': controller.describe()}
    names = controller.instances() or [f'app{i}' for i in range(1, 33)]
    healthy = {}
    for name in names:
        st, b = get_json(f'{base}{KIT_PREFIX}/instance/{name}/healthz', 2)
        if st is None or st == 404:
            if not controller.instances():
                break  # probing blindly: stop at the first unknown name
            healthy[name] = 'unreachable'
        else:
            healthy[name] = b.get('redis') if isinstance(b, dict) else f'http {st}'
    shape['instances_healthz'] = healthy
    return shape


def machine_cpu() -> Optional[dict]:
    try:
        import psutil
        return psutil.cpu_times()._asdict()
    except Exception:  # psutil missing: the field is left out
        return None


class Run:
    """One run: its config, controller, generator pool and growing result."""

    def __init__(self, cfg: Config, controller: Controller, describe_cluster=True):
        self.cfg, self.controller = cfg, controller
        self.problems: List[str] = []   # why the result is invalid
        self.warnings: List[str] = []
        self.result = {
            'scenario': cfg.scenario, 'command': cfg.command,
            'started_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
            'machine': environment.machine(), 'versions': environment.versions(),
            'config': {k: v for k, v in asdict(cfg).items()
                       if k not in ('command', 'quiet', 'out', 'plots')},
            'cluster': cluster_shape(cfg, controller) if describe_cluster else {}}
        self.pool: Optional[Pool] = None

    def log(self, text: str):
        if not self.cfg.quiet:
            print(text, file=sys.stderr, flush=True)

    def finish(self) -> dict:
        self.result.update(valid=not self.problems, problems=self.problems,
                           warnings=self.warnings)
        return self.result

    def connect(self, join: bool, senders: Optional[int] = None) -> List[dict]:
        cfg, pool = self.cfg, self.pool
        counts = split(cfg.clients, len(pool))
        per_proc = split(min(cfg.senders if senders is None else senders, cfg.clients),
                         len(pool))
        timeout = cfg.clients / cfg.connect_rate + cfg.connect_timeout * 3 + 60
        bar = None if cfg.quiet else Progress('connect', cfg.clients, 'connected')
        replies = pool.ask('connect', [
            {'clients': n, 'senders': s, 'rate': cfg.connect_rate / len(pool), 'join': join}
            for n, s in zip(counts, per_proc)], timeout, bar)
        connected = sum(r['connected'] for r in replies)
        elapsed = max(r['elapsed'] for r in replies)
        self.result['connect'] = info = {
            'attempted': sum(r['attempted'] for r in replies), 'connected': connected,
            'joined': sum(r['joined'] for r in replies),
            'errors': merge.merge_counts(r['errors'] for r in replies),
            'clients_per_instance': merge.merge_counts(r['landed'] for r in replies),
            'connect_latency_ms': merge.merge_hist(r['connect_hist'] for r in replies).summary(),
            'connect_seconds': round(elapsed, 3),
            'connects_per_second': round(connected / elapsed, 1) if elapsed else None,
            'generator_cpu': [round(r['cpu'], 3) for r in replies]}
        checks.transport(self.result, self.problems, cfg.transport, replies)
        checks.compression(self.result, self.warnings, cfg.offers_deflate, replies)
        if connected == 0:
            raise RunError(f'no client connected to {cfg.url}: '
                           f'{info["errors"] or "no error recorded"}')
        if connected < cfg.clients:
            self.warnings.append(f'{cfg.clients - connected} of {cfg.clients} clients '
                                 f'failed to connect: {info["errors"]}')
        self.log(f'clients per instance: {info["clients_per_instance"]}; transport asked '
                 f'{cfg.transport}, got {self.result["transport"]["got"]}; compression '
                 f'negotiated on {self.result["compression"]["negotiated"]}')
        return replies

    def send(self, replies: List[dict], at_start: Optional[Callable] = None,
             include_clients: bool = False):
        """Run the senders for `duration`, then tally deliveries; returns
        (t0, tallies). at_start(t0) runs just before the window opens."""
        t0, ran = self.window(replies, at_start)
        senders = {}
        for r in ran:
            senders.update(r['senders'])
        return t0, self.tally(t0, senders, include_clients)

    def window(self, replies: List[dict], at_start: Optional[Callable] = None,
               check: bool = True):
        """The send window and the drain; returns (t0, the workers' replies)."""
        cfg = self.cfg
        n_senders = sum(len(r['sender_instances']) for r in replies)
        if n_senders == 0 and cfg.rate > 0:
            raise RunError('no sender connected')
        rate_per_sender = cfg.rate / n_senders if n_senders else 0
        # Before t0: reading the cluster's CPU can take seconds (docker stats),
        # and a kill is scheduled from t0, so it must not eat into the run.
        cpu0 = self.cluster_cpu()
        t0 = time.time() + 1.0
        args, first = [], 0
        for r in replies:
            args.append({'t0': t0, 'duration': cfg.duration, 'drain': cfg.drain,
                         'rate_per_sender': rate_per_sender,
                         'total_senders': max(1, n_senders), 'first_sender': first})
            first += len(r['sender_instances'])
        bar = None if cfg.quiet else Progress(cfg.scenario, cfg.duration + cfg.drain + 1,
                                              'seconds', clock=True)
        if at_start:
            at_start(t0)
        ran = self.pool.ask('run', args, cfg.duration + cfg.drain + cfg.ack_timeout + 120, bar)
        self.cluster_cpu(cpu0, 'send window + drain')
        if check:
            checks.cpu(self.result, self.problems, 'send window',
                       [r['send_cpu'] for r in ran], cfg.max_cpu)
            checks.lag(self.result, self.problems, 'send window',
                       [merge.merge_hist([r['send_lag']]) for r in ran], cfg.max_lag_ms)
        return t0, ran

    def tally(self, t0: float, senders: dict, include_clients: bool = False) -> List[dict]:
        """Deliveries against what `senders` sent, into result['delivery']."""
        tallies = self.pool.ask_all('tally', {'senders': senders,
                                              'include_clients': include_clients}, 300)
        d = self.result['delivery'] = merge.delivery(self.cfg.duration, t0, senders, tallies)
        self.result['latency_cdf'] = d.pop('latency_cdf')
        if d['protocol_errors']:
            self.problems.append(f'{d["protocol_errors"]} protocol errors')
        return tallies

    def cluster_cpu(self, before=None, label=''):
        """Snapshot the cluster's CPU times; with `before`, record the use per
        process as a fraction of one core over the window."""
        now = (time.time(), self.controller.cpu_seconds(), machine_cpu())
        if before is None:
            return now
        wall = now[0] - before[0]
        self.result['cluster_cpu'] = {
            'window': label, 'seconds': round(wall, 2),
            'fraction_of_a_core': {n: round((now[1][n] - before[1][n]) / wall, 3)
                                   for n in now[1] if n in before[1]}}
        if before[2] and now[2]:
            # The whole machine, every process and the kernel: on a shared box
            # this says whether anything was left idle.
            delta = {k: now[2][k] - before[2][k] for k in now[2]}
            total = sum(delta.values()) or 1.0
            self.result['machine_cpu'] = {
                'window': label,
                'busy_fraction': round(1 - (delta.get('idle', 0) +
                                            delta.get('iowait', 0)) / total, 3),
                **{k: round(v / total, 3) for k, v in delta.items()
                   if k in ('user', 'system', 'softirq', 'steal', 'idle')}}
        return now
