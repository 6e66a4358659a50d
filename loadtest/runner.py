"""The coordinator: starts the generator processes, drives each scenario
through its phases, kills/restores instances, and merges the results."""
import json
import math
import multiprocessing as mp
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

from loadtest import environment
from loadtest.control import Controller
from loadtest.progress import Progress
from loadtest.stats import Histogram, percentiles
from loadtest.worker import PROGRESS_SLOTS, worker_main

# Wait between a restored instance being healthy and probing it (see restore).
RESTORE_SETTLE_SECONDS = 1.5

SCENARIOS = ('broadcast', 'reconnect', 'ramp')


@dataclass
class Config:
    scenario: str = 'broadcast'
    url: str = 'http://127.0.0.1:8080'
    path: str = '/socket.io'
    origin: Optional[str] = 'http://localhost:8081'
    transport: str = 'websocket'
    clients: int = 50
    senders: int = 5
    rate: float = 20.0          # broadcasts per second, all senders together
    duration: float = 10.0
    drain: float = 3.0
    room: str = 'loadtest'
    procs: int = 1
    connect_rate: float = 500.0
    connect_concurrency: int = 200
    connect_timeout: float = 10.0
    ack_timeout: float = 10.0
    reconnect_delay: float = 0.5
    reconnect_delay_max: float = 2.0
    kill_via: str = 'auto'
    kill_mode: str = 'kill'
    kill_after: float = 3.0
    victim: Optional[str] = None
    deadline: float = 30.0
    restore: bool = True
    probe_clients: int = 12
    hold: float = 5.0
    max_cpu: float = 0.85
    max_lag_ms: float = 50.0
    run_dir: Optional[str] = None
    project: str = 'socketio-kit'
    command: str = ''
    quiet: bool = False
    extra: dict = field(default_factory=dict)


class RunError(RuntimeError):
    """The run could not produce a result (no cluster, no clients...)."""


def _get_json(url: str, timeout: float = 3.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read().decode())
    except Exception as exc:  # any failure is reported, not raised
        return None, str(exc)


def cluster_shape(cfg: Config, controller: Controller) -> dict:
    """Which instances answer through the balancer, before the run."""
    base = cfg.url.rstrip('/')
    status, body = _get_json(f'{base}/healthz')
    shape = {'url': cfg.url, 'balancer_healthz': body if status == 200 else
             f'error: {body}', 'controller': controller.describe()}
    names = controller.instances() or [f'app{i}' for i in range(1, 33)]
    healthy = {}
    for name in names:
        st, b = _get_json(f'{base}/_instance/{name}/healthz', 2)
        if st is None or st == 404:
            if not controller.instances():
                break  # probing blindly: stop at the first unknown name
            healthy[name] = 'unreachable'
        else:
            healthy[name] = b.get('redis') if isinstance(b, dict) else f'http {st}'
    shape['instances_healthz'] = healthy
    return shape


class Pool:
    """The generator processes and their pipes."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        ctx = mp.get_context('spawn')
        self.progress = ctx.Array('d', cfg.procs * PROGRESS_SLOTS, lock=False)
        self.pipes, self.procs = [], []
        wcfg = asdict(cfg)
        for i in range(cfg.procs):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, name=f'loadtest-{i}',
                               args=(i, wcfg, child, self.progress), daemon=True)
            proc.start()
            child.close()
            self.pipes.append(parent)
            self.procs.append(proc)

    def ask(self, command: str, args: List[dict], timeout: float,
            bar: Optional[Progress] = None) -> List[dict]:
        """Send one command to every worker (args[i] to worker i), wait for all."""
        for pipe, arg in zip(self.pipes, args):
            pipe.send((command, arg))
        replies: List[Optional[dict]] = [None] * len(self.pipes)
        deadline = time.monotonic() + timeout
        while any(r is None for r in replies):
            if time.monotonic() > deadline:
                raise RunError(f'generator processes did not finish {command!r} '
                               f'within {timeout:.0f}s')
            for i, pipe in enumerate(self.pipes):
                if replies[i] is None and pipe.poll(0.05):
                    try:
                        name, reply = pipe.recv()
                    except EOFError:
                        raise RunError(f'generator process {i} died during '
                                       f'{command!r}') from None
                    replies[i] = reply
            if bar:
                bar.update(self.progress)
        return replies

    def ask_one(self, index: int, command: str, arg: dict, timeout: float):
        pipe = self.pipes[index]
        pipe.send((command, arg))
        if not pipe.poll(timeout):
            raise RunError(f'generator process {index} did not finish {command!r}')
        return pipe.recv()[1]

    def close(self):
        for pipe in self.pipes:
            try:
                pipe.send(('close', {}))
            except (OSError, BrokenPipeError):
                pass
        for i, proc in enumerate(self.procs):
            if self.pipes[i].poll(15):
                try:
                    self.pipes[i].recv()
                except EOFError:
                    pass
            proc.join(10)
            if proc.is_alive():  # our own child, by its handle
                proc.terminate()
                proc.join(5)


def split(total: int, parts: int) -> List[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def merge_counts(dicts) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for d in dicts:
        for k, v in (d or {}).items():
            out[str(k)] = out.get(str(k), 0) + v
    return dict(sorted(out.items()))


def merge_timeline(parts: List[list], t0: float, step: float = 0.5) -> dict:
    """Connected clients per instance over time, summed over workers.

    Each worker sampled at its own instants; take each worker's last sample
    in every step-wide bin, then add the workers up."""
    bins: Dict[int, Dict[str, int]] = {}
    lasts = []
    for samples in parts:
        last: Dict[int, dict] = {}
        for ts, counts in samples:
            last[int(math.floor((ts - t0) / step))] = counts
        lasts.append(last)
    # Keep only the bins every worker sampled: a bin one worker had already
    # stopped sampling would show its clients as gone.
    if lasts and all(lasts):
        low = max(min(last) for last in lasts)
        high = min(max(last) for last in lasts)
        lasts = [{b: c for b, c in last.items() if low <= b <= high} for last in lasts]
    for last in lasts:
        for b, counts in last.items():
            acc = bins.setdefault(b, {})
            for inst, n in counts.items():
                acc[str(inst)] = acc.get(str(inst), 0) + n
    times = sorted(bins)
    instances = sorted({i for b in bins.values() for i in b})
    return {'t': [round(b * step, 3) for b in times],
            'instances': {i: [bins[b].get(i, 0) for b in times] for i in instances}}


class Runner:
    def __init__(self, cfg: Config, controller: Controller):
        self.cfg, self.controller = cfg, controller
        self.result: dict = {}
        self.problems: List[str] = []   # why the result is invalid
        self.warnings: List[str] = []

    def log(self, text: str):
        if not self.cfg.quiet:
            print(text, file=sys.stderr, flush=True)

    def run(self) -> dict:
        cfg = self.cfg
        started = time.time()
        self.result = {
            'scenario': cfg.scenario, 'command': cfg.command,
            'started_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(started)),
            'machine': environment.machine(), 'versions': environment.versions(),
            'config': {k: v for k, v in asdict(cfg).items()
                       if k not in ('command', 'quiet', 'extra')},
            'cluster': cluster_shape(cfg, self.controller),
        }
        pool = Pool(cfg)
        try:
            getattr(self, f'run_{cfg.scenario}')(pool)
        finally:
            pool.close()
        self.result['duration_s'] = round(time.time() - started, 2)
        self.result['valid'] = not self.problems
        self.result['problems'] = self.problems
        self.result['warnings'] = self.warnings
        return self.result

    # -- shared phases ------------------------------------------------------------
    def connect(self, pool: Pool, join: bool) -> List[dict]:
        cfg = self.cfg
        counts = split(cfg.clients, cfg.procs)
        senders = split(min(cfg.senders, cfg.clients), cfg.procs) \
            if cfg.scenario != 'ramp' else [0] * cfg.procs
        # Give each process its senders on its first clients.
        per_rate = cfg.connect_rate / cfg.procs
        timeout = cfg.clients / cfg.connect_rate + cfg.connect_timeout * 3 + 60
        bar = None if cfg.quiet else Progress('connect', cfg.clients, 'connected')
        replies = pool.ask('connect', [
            {'clients': n, 'senders': s, 'rate': per_rate, 'join': join}
            for n, s in zip(counts, senders)], timeout, bar)
        if bar:
            bar.done(pool.progress)
        connect_hist = Histogram.merged(Histogram.from_dict(r['connect_hist'])
                                        for r in replies)
        connected = sum(r['connected'] for r in replies)
        elapsed = max(r['elapsed'] for r in replies)
        info = {
            'attempted': sum(r['attempted'] for r in replies),
            'connected': connected,
            'joined': sum(r['joined'] for r in replies),
            'errors': merge_counts(r['errors'] for r in replies),
            'clients_per_instance': merge_counts(r['landed'] for r in replies),
            'connect_latency_ms': connect_hist.summary(),
            'connect_seconds': round(elapsed, 3),
            'connects_per_second': round(connected / elapsed, 1) if elapsed else None,
            'generator_cpu': [round(r['cpu'], 3) for r in replies],
            'nofile_limit': [r['nofile'] for r in replies],
        }
        self.result['connect'] = info
        self.check_transport(replies)
        if connected == 0:
            raise RunError(f'no client connected to {cfg.url}: '
                           f'{info["errors"] or "no error recorded"}')
        if connected < cfg.clients:
            self.warnings.append(f'{cfg.clients - connected} of {cfg.clients} '
                                 f'clients failed to connect: {info["errors"]}')
        return replies

    def check_transport(self, replies: List[dict]):
        """Transport asked vs got; a mismatch makes the run fail loudly."""
        cfg = self.cfg
        asked = 'websocket' if cfg.transport in ('websocket', 'upgrade') else 'polling'
        got = merge_counts(r['transports'] for r in replies)
        self.result['transport'] = {
            'asked': cfg.transport, 'expected_in_use': asked, 'got': got,
            'server_saw_at_connect': merge_counts(r['welcome_transports']
                                                  for r in replies),
            'upgrade_errors': merge_counts(r['upgrade_errors'] for r in replies)}
        wrong = sum(n for t, n in got.items() if t != asked)
        if wrong:
            self.problems.append(
                f'TRANSPORT MISMATCH: asked for {asked} ({cfg.transport}), but '
                f'{wrong} client(s) use {", ".join(t for t in got if t != asked)}; '
                f'upgrade errors: {self.result["transport"]["upgrade_errors"]}')
            self.result['transport_mismatch'] = True

    def check_cpu(self, label: str, fractions: List[float]):
        self.result.setdefault('generator_cpu', {})[label] = \
            [round(f, 3) for f in fractions]
        hot = [f for f in fractions if f > self.cfg.max_cpu]
        if hot:
            self.problems.append(
                f'GENERATOR SATURATED during {label}: {max(hot):.0%} of a core '
                f'in a generator process (limit {self.cfg.max_cpu:.0%}); the '
                f'numbers measure the generator, not the cluster. Use more '
                f'--procs or fewer clients.')

    def check_lag(self, label: str, lags: List[Histogram]):
        """Event-loop lag of the generators: a loop that runs its callbacks
        late adds that delay to every latency it measures, whatever its CPU."""
        summaries = [h.summary() for h in lags]
        self.result.setdefault('generator_loop_lag_ms', {})[label] = summaries
        worst = max((s['p99'] or 0) for s in summaries) if summaries else 0
        if worst > self.cfg.max_lag_ms:
            self.problems.append(
                f'GENERATOR LAGGING during {label}: its event loop ran callbacks '
                f'{worst:.0f} ms late (p99; limit {self.cfg.max_lag_ms:g} ms), so '
                f'measured latencies include the generator\'s own delay. Use more '
                f'--procs or fewer clients.')

    def _start_time(self) -> float:
        return time.time() + 1.0

    def send_phase(self, pool: Pool, replies: List[dict], extra=None):
        """Run the senders for `duration`, then tally deliveries."""
        cfg = self.cfg
        n_senders = sum(len(r['sender_instances']) for r in replies)
        if n_senders == 0 and cfg.rate > 0:
            raise RunError('no sender connected')
        rate_per_sender = cfg.rate / n_senders if n_senders else 0
        # Before t0: reading the cluster's CPU can take seconds (docker stats),
        # and the kill is scheduled from t0, so it must not eat into the run.
        cpu0 = self._cluster_cpu()
        t0 = self._start_time()
        args, first = [], 0
        for r in replies:
            args.append({'t0': t0, 'duration': cfg.duration,
                         'rate_per_sender': rate_per_sender, 'drain': cfg.drain,
                         'total_senders': max(1, n_senders), 'first_sender': first})
            first += len(r['sender_instances'])
        bar = None if cfg.quiet else Progress(cfg.scenario, cfg.duration + cfg.drain + 1,
                                              'seconds', clock=True)
        if extra:
            extra(t0, pool)
        ran = pool.ask('run', args, cfg.duration + cfg.drain + cfg.ack_timeout + 120, bar)
        if bar:
            bar.done(pool.progress)
        self._cluster_cpu(cpu0, t0, 'send window + drain')
        senders = {}
        for r in ran:
            senders.update(r['senders'])
        self.check_cpu('send window', [r['send_cpu'] for r in ran])
        self.check_lag('send window', [Histogram.from_dict(r['send_lag']) for r in ran])
        tallies = pool.ask('tally', [{'senders': senders,
                                      'include_clients': cfg.scenario == 'reconnect'}]
                           * cfg.procs, 300)
        return t0, senders, tallies, ran

    def delivery(self, t0, senders, tallies) -> dict:
        cfg = self.cfg
        same = Histogram.merged(Histogram.from_dict(t['same']) for t in tallies)
        cross = Histogram.merged(Histogram.from_dict(t['cross']) for t in tallies)
        overall = Histogram.merged([same, cross])
        ack = Histogram.merged(Histogram.from_dict(s['ack']) for s in senders.values())
        expected = sum(t['expected'] for t in tallies)
        received = sum(t['received'] for t in tallies)
        sent = sum(s['sent'] for s in senders.values())
        unacked = sum(len(s['unacked']) for s in senders.values())
        lasts = [t['last_recv'] for t in tallies if t['last_recv']]
        window = (max(lasts) - t0) if lasts else None
        out = {
            'senders': len(senders), 'members': sum(t['members'] for t in tallies),
            'sent': sent, 'acked': sent - unacked, 'unacked': unacked,
            'refused': sum(s['refused'] for s in senders.values()),
            'skipped_while_disconnected': sum(s['skipped'] for s in senders.values()),
            'sends_late_over_1s': sum(s['late'] for s in senders.values()),
            'send_rate_achieved': round(sent / cfg.duration, 2),
            'expected': expected, 'received': received,
            'delivery_ratio': round(received / expected, 6) if expected else None,
            'duplicates': sum(t['duplicates'] for t in tallies),
            'out_of_order': sum(t['out_of_order'] for t in tallies),
            'same_instance_deliveries': same.count,
            'cross_instance_deliveries': cross.count,
            'delivered_per_second': round(received / cfg.duration, 1),
            'delivered_per_second_incl_drain': round(received / window, 1)
            if window else None,
            'latency_ms': {'all': overall.summary(), 'same_instance': same.summary(),
                           'cross_instance': cross.summary()},
            'ack_latency_ms': ack.summary(),
            'protocol_errors': sum(t['protocol_errors'] for t in tallies),
        }
        self.result['delivery'] = out
        self._cdf = {'same-instance': same.cdf(), 'cross-instance': cross.cdf()}
        self.result['latency_cdf'] = {k: [[round(x * 1000, 3), round(y, 5)]
                                           for x, y in v[::max(1, len(v) // 400)]]
                                      for k, v in self._cdf.items()}
        if out['protocol_errors']:
            self.problems.append(f'{out["protocol_errors"]} protocol errors')
        return out

    # -- scenarios -------------------------------------------------------------------
    def run_broadcast(self, pool: Pool):
        replies = self.connect(pool, join=True)
        self.log(self._landed_line())
        t0, senders, tallies, _ = self.send_phase(pool, replies)
        self.delivery(t0, senders, tallies)
        self.result['clients_per_instance_end'] = merge_counts(
            t['landed_now'] for t in tallies)

    def run_reconnect(self, pool: Pool):
        cfg = self.cfg
        replies = self.connect(pool, join=True)
        self.log(self._landed_line())
        landed = self.result['connect']['clients_per_instance']
        sender_instances = [i for r in replies for i in r['sender_instances']]
        victim = cfg.victim or self._pick_victim(landed, sender_instances)
        if victim not in landed:
            self.warnings.append(f'victim {victim} holds no clients')
        kill = {}

        def schedule_kill(t0, _pool):
            import threading

            def do_kill():
                time.sleep(max(0.0, t0 + cfg.kill_after - time.time()))
                kill['at'] = time.time()
                try:
                    (self.controller.kill if cfg.kill_mode == 'kill'
                     else self.controller.stop)(victim)
                    kill['done_at'] = time.time()
                except Exception as exc:  # reported in the result
                    kill['error'] = f'{type(exc).__name__}: {exc}'
            thread = threading.Thread(target=do_kill, daemon=True)
            thread.start()
            kill['thread'] = thread

        t0, senders, tallies, _ = self.send_phase(pool, replies, schedule_kill)
        kill['thread'].join(60)
        if 'error' in kill:
            raise RunError(f'could not {cfg.kill_mode} {victim}: {kill["error"]}')
        self.delivery(t0, senders, tallies)
        kill_at = kill['at']
        lost = [c for t in tallies for c in t['lost_clients']]
        affected = [c for c in lost if c['start_instance'] == victim]
        others = [c for c in lost if c['start_instance'] != victim]
        back = [c['receiving'] - kill_at for c in affected if c['receiving']]
        reconnected = [c['back'] - kill_at for c in affected if c['back']]
        n_aff = landed.get(victim, 0)
        within = sum(1 for v in back if v <= cfg.deadline)
        self.result['reconnect'] = {
            'victim': victim, 'mode': cfg.kill_mode,
            'controller': self.controller.kind,
            'kill_at_s': round(kill_at - t0, 3),
            'kill_call_seconds': round(kill.get('done_at', kill_at) - kill_at, 3),
            'affected_clients': n_aff, 'lost_connection': len(affected),
            'lost_connection_elsewhere': len(others),
            'reconnected': len(reconnected),
            'back_and_receiving': len(back),
            'deadline_s': cfg.deadline,
            'pct_back_within_deadline': round(100.0 * within / n_aff, 2) if n_aff else None,
            'time_to_reconnected_ms': percentiles(reconnected),
            'time_to_back_and_receiving_ms': percentiles(back),
            'landed_after': merge_counts([{c['new_instance']: 1} for c in affected
                                          if c['new_instance']]),
            'missed_per_affected_client': percentiles(
                [c['missed'] for c in affected], scale=1),
            'missed_total_affected': sum(c['missed'] for c in affected),
            'missed_total_unaffected': sum(t['missed_unaffected'] for t in tallies),
            'reconnect_failures': merge_counts(t['reconnect_failures'] for t in tallies),
        }
        self.result['timeline'] = merge_timeline([t['timeline'] for t in tallies], t0)
        self.result['timeline']['kill_at'] = round(kill_at - t0, 3)
        if cfg.restore:
            self.restore(pool, victim)

    def restore(self, pool: Pool, victim: str):
        started = time.time()
        try:
            self.controller.start(victim)
        except Exception as exc:
            first = str(exc).split('\n')[0]
            self.result['restore'] = {'instance': victim,
                                      'error': f'{type(exc).__name__}: {exc}'}
            self.warnings.append(f'could not restore {victim}: {first}')
            return
        took = time.time() - started
        # nginx skips a server for fail_timeout (1 s) after a failed
        # connection; probe once that window has passed.
        time.sleep(RESTORE_SETTLE_SECONDS)
        probe = pool.ask_one(0, 'probe', {'clients': self.cfg.probe_clients}, 120)
        self.result['restore'] = {
            'instance': victim, 'start_seconds': round(took, 2),
            'probe_after_seconds': RESTORE_SETTLE_SECONDS,
            'probe_clients': self.cfg.probe_clients, 'probe_landed': probe['landed'],
            'probe_errors': probe['errors'],
            'new_clients_reach_restored': probe['landed'].get(victim, 0) > 0}

    def run_ramp(self, pool: Pool):
        cfg = self.cfg
        names = self.controller.instances()
        before = {n: self.controller.rss(n) for n in names}
        replies = self.connect(pool, join=False)
        self.log(self._landed_line())
        self.check_cpu('connect', [r['cpu'] for r in replies])
        held = pool.ask('hold', [{'seconds': cfg.hold}] * cfg.procs, cfg.hold + 60)
        after = {n: self.controller.rss(n) for n in names}
        landed = self.result['connect']['clients_per_instance']
        memory = {}
        for n in names:
            b, a, c = before.get(n), after.get(n), landed.get(n, 0)
            memory[n] = {'rss_before_mib': _mib(b), 'rss_after_mib': _mib(a),
                         'clients': c,
                         'kib_per_connection': round((a - b) / c / 1024, 1)
                         if a is not None and b is not None and c else None}
        self.result['ramp'] = {
            'held_after_s': cfg.hold,
            'still_connected': sum(h['connected'] for h in held),
            'memory': memory, 'rss_source': self.controller.kind}
        if not any(m['kib_per_connection'] for m in memory.values()):
            self.warnings.append('no instance RSS available (use --kill-via '
                                 'native|docker to say where the instances run)')
        tallies = pool.ask('tally', [{'senders': {}, 'include_clients': False}]
                           * cfg.procs, 120)
        self.result['timeline'] = merge_timeline([t['timeline'] for t in tallies],
                                                 tallies[0]['timeline'][0][0]
                                                 if tallies[0]['timeline'] else 0)

    # -- helpers ---------------------------------------------------------------------
    def _cluster_cpu(self, before=None, since=None, label=''):
        """Snapshot the cluster's CPU times; with `before`, record the use per
        process as a fraction of one core over the window."""
        now = (time.time(), self.controller.cpu_seconds(), _machine_cpu())
        if before is not None:
            wall = now[0] - before[0]
            self.result['cluster_cpu'] = {
                'window': label, 'seconds': round(wall, 2),
                'fraction_of_a_core': {
                    n: round((now[1][n] - before[1][n]) / wall, 3)
                    for n in now[1] if n in before[1]}}
            if before[2] and now[2]:
                # The whole machine, every process and the kernel: on a shared
                # 2-core box this says whether anything was left idle.
                delta = {k: now[2][k] - before[2][k] for k in now[2]}
                total = sum(delta.values()) or 1.0
                self.result['machine_cpu'] = {
                    'window': label,
                    'busy_fraction': round(1 - (delta.get('idle', 0) +
                                                delta.get('iowait', 0)) / total, 3),
                    **{k: round(v / total, 3) for k, v in delta.items()
                       if k in ('user', 'system', 'softirq', 'steal', 'idle')}}
        return now

    def _pick_victim(self, landed: Dict[str, int], sender_instances) -> str:
        """The instance with the fewest senders, then the most clients: its
        clients must come back while the broadcast keeps going."""
        if not landed:
            raise RunError('no client landed anywhere; nothing to kill')
        return min(landed, key=lambda n: (sender_instances.count(n), -landed[n], n))

    def _landed_line(self) -> str:
        landed = self.result['connect']['clients_per_instance']
        got = self.result['transport']['got']
        return (f'clients per instance: {landed}; transport asked '
                f'{self.cfg.transport}, got {got}')


def _machine_cpu() -> Optional[dict]:
    try:
        import psutil
        return psutil.cpu_times()._asdict()
    except Exception:  # psutil missing: the field is left out
        return None


def _mib(value):
    return None if value is None else round(value / 1024 / 1024, 1)
