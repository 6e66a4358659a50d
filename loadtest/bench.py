"""`python -m loadtest.bench` (make bench): the standard sizes, written up.

Runs, against the running cluster (or, with --start-native, a private native
cluster on free ports that it stops afterwards):
1. ramp: 10,000 WebSocket clients held; memory per connection per instance;
2. broadcast at 1,500 clients in one room, stepping the rate up until p99
   reaches 100 ms or a message is lost; the highest passing rate is the result;
3. reconnect: 1,500 clients, one of the instances killed (and, separately,
   stopped gracefully) during a steady broadcast.
Every run's JSON goes to bench/results/, plots to bench/, and the tables plus
the machine description to BENCHMARKS.md.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import List, Optional

from loadtest import cli, control, environment
from loadtest.runner import RunError

ROOT = Path(__file__).resolve().parent.parent
P99_LIMIT_MS = 100.0


def start_private_native(run_dir: Path, instances: int, env: dict):
    """A native cluster (same code as `make local`) on free loopback ports."""
    from native.cluster import LocalCluster
    lc = LocalCluster.on_free_ports(run_dir, instances, env)
    run_dir.mkdir(parents=True, exist_ok=True)
    lc.stop()  # what a crashed earlier bench left running, by its PID files
    lc.start()
    return lc


class Bench:
    def __init__(self, args, controller, url):
        self.args, self.controller, self.url = args, controller, url
        self.out_dir = Path(args.out_dir)
        self.results_dir = self.out_dir / 'results'
        self.runs = {}

    def log(self, text):
        print(f'bench: {text}', file=sys.stderr, flush=True)

    def run(self, name: str, argv: List[str]) -> Optional[dict]:
        out = self.results_dir / f'{name}.json'
        argv = [*argv, '--url', self.url, '--origin', self.args.origin,
                '--out', str(out), '-q']
        self.log(f'{name}: python -m loadtest {" ".join(argv)}')
        try:
            result = cli.run(argv, self.controller)
        except RunError as exc:
            self.log(f'{name} failed: {exc}')
            self.runs[name] = {'error': str(exc), 'argv': argv}
            return None
        self.runs[name] = result
        self.log(f'{name}: valid={result["valid"]} problems={result["problems"]}')
        return result

    def ramp(self):
        a = self.args
        return self.run('ramp', ['ramp', '-c', str(a.ramp_clients), '-p', str(a.procs),
                                 '--connect-rate', str(a.connect_rate), '--hold', '10'])

    def sweep(self):
        a = self.args
        passing = None
        self.sweep_rows = []
        for rate in a.rates:
            r = self.run(f'broadcast-{a.room_clients}-r{rate:g}', [
                'broadcast', '-c', str(a.room_clients), '-p', str(a.procs),
                '-s', str(a.senders), '-r', f'{rate:g}', '-d', str(a.duration),
                '--drain', '3', '--connect-rate', str(a.connect_rate)])
            if r is None:
                break
            ok = self.passes(r)
            self.sweep_rows.append((rate, r, ok))
            if ok:
                passing = r
            # Past the p99 limit, keep stepping while every message still
            # arrives: the curve shows where throughput, not latency, gives out.
            # An invalid step (generator saturated or lagging) stays in the
            # table, marked, and the sweep goes on: the curve is still useful.
            d = r['delivery']
            if (d['delivery_ratio'] != 1.0
                    or (d['latency_ms']['all']['p99'] or 0) > a.max_p99_ms):
                break
        self.best = passing

    def sizes(self):
        """How the room size alone moves p99, at a gentle 1 broadcast/s."""
        a = self.args
        self.size_rows = []
        for members in a.sizes:
            r = self.run(f'size-{members}', [
                'broadcast', '-c', str(members), '-p', str(a.procs),
                '-s', str(min(a.senders, members)), '-r', '1', '-d', str(a.duration),
                '--drain', '3', '--connect-rate', str(a.connect_rate)])
            if r:
                self.size_rows.append((members, r, self.passes(r)))

    def reconnect(self):
        a = self.args
        self.reconnect_runs = []
        for mode in ('kill', 'stop'):
            r = self.run(f'reconnect-{mode}', [
                'reconnect', '-c', str(a.room_clients), '-p', str(a.procs),
                '-s', str(a.senders), '-r', f'{a.reconnect_rate:g}', '-d', '20',
                '--kill-after', '5', '--kill-mode', mode, '--drain', '3',
                # The times measured here are around a second: a generator
                # running callbacks 250 ms late is still a 25% error, not more.
                '--max-lag-ms', '250',
                '--deadline', '30', '--connect-rate', str(a.connect_rate)])
            if r:
                self.reconnect_runs.append(r)

    def load(self):
        """Re-read the results of the last run (for --from-results)."""
        summary = json.loads((self.results_dir / 'summary.json').read_text())
        self.sweep_rows, self.best, self.reconnect_runs = [], None, []
        self.meta = summary.pop('_meta', {})
        for name, info in summary.items():
            if 'error' in info:
                self.runs[name] = info
                continue
            result = json.loads(Path(info['out']).read_text())
            self.runs[name] = result
            if name.startswith('broadcast-'):
                ok = self.passes(result)
                self.sweep_rows.append((result['config']['rate'], result, ok))
                if ok:
                    self.best = result
            elif name.startswith('size-'):
                self.size_rows = getattr(self, 'size_rows', [])
                self.size_rows.append((result['config']['clients'], result,
                                       self.passes(result)))
            elif name.startswith('reconnect-'):
                self.reconnect_runs.append(result)

    @staticmethod
    def passes(r) -> bool:
        d = r['delivery']
        p99 = d['latency_ms']['all']['p99']
        return bool(r['valid'] and d['delivery_ratio'] == 1.0 and p99 is not None
                    and p99 < P99_LIMIT_MS)


def _ms(v):
    return '-' if v is None else f'{v:,.1f}'


def _cpu(result, label):
    cpus = result.get('generator_cpu', {}).get(label)
    return ' / '.join(f'{c:.0%}' for c in cpus) if cpus else '-'


def _lag(result):
    lags = result.get('generator_loop_lag_ms', {}).get('send window')
    return ' / '.join(_ms(x['p99']) for x in lags) if lags else '-'


def _busy(result):
    mc = result.get('machine_cpu')
    return f'{mc["busy_fraction"]:.0%}' if mc else '-'


def _cluster_cpu(result):
    cc = result.get('cluster_cpu')
    if not cc:
        return '-'
    return ', '.join(f'{n} {v:.0%}' for n, v in cc['fraction_of_a_core'].items())


def _rel(path: str, base: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return path


def write_markdown(bench: Bench, path: Path, started: float, cluster_note: str):
    m = environment.machine()
    v = environment.versions()
    base = path.parent
    lines = [
        '# Benchmarks',
        '',
        f'Measured {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))} by '
        f'`{bench.args.command}` (`make bench`). Every number below comes from a '
        f'JSON result in `{_rel(str(bench.results_dir), base)}/`, which also records '
        f'the exact `python -m loadtest ...` command, the machine, the versions and '
        f'the cluster shape.',
        '',
        '## Machine and cluster',
        '',
        f'- {m.get("cores")} cores ({m.get("cpu_model")}), {m.get("ram_gib")} GiB RAM, '
        f'Linux {m.get("kernel")}.',
        f'- Cluster: {cluster_note}',
        f'- python {v["python"]}, python-socketio {v["python-socketio"]}, '
        f'python-engineio {v["python-engineio"]}, gunicorn {v["gunicorn"]} '
        f'(eventlet {v["eventlet"]}), {v.get("nginx") or "nginx ?"}, '
        f'{(v.get("redis_server") or "redis ?").split(" sha")[0]}; load generator: '
        f'aiohttp {v["aiohttp"]}, {bench.args.procs} processes.',
        '- The load generator runs on the same 2 cores as the cluster. Its own CPU '
        'is measured per process and a run is marked invalid above 85% of a core; '
        'the cluster\'s CPU per process is shown too, as a fraction of one core.',
        '',
    ]
    r = bench.runs.get('ramp')
    lines += ['## 1. Concurrent WebSocket clients held (ramp)', '']
    if r and 'error' not in r:
        c = r['connect']
        lines += [
            f'Command: `{r["command"]}`', '',
            f'- Connected **{c["connected"]:,} of {c["attempted"]:,}** clients '
            f'(transport asked {r["transport"]["asked"]}, got '
            f'{", ".join(f"{k}={n:,}" for k, n in r["transport"]["got"].items())}); '
            f'{r["ramp"]["still_connected"]:,} still connected after holding '
            f'{r["ramp"]["held_after_s"]:g} s. Errors: {c["errors"] or "none"}.',
            f'- Connect rate achieved {c["connects_per_second"]} /s; connect latency '
            f'(to `welcome`) p50 {_ms(c["connect_latency_ms"]["p50"])} ms, p99 '
            f'{_ms(c["connect_latency_ms"]["p99"])} ms, max '
            f'{_ms(c["connect_latency_ms"]["max"])} ms.',
            f'- Generator CPU while connecting: {_cpu(r, "connect")} of a core per process.',
            '', '| instance | clients | RSS before (MiB) | RSS after (MiB) | KiB per connection |',
            '|---|---:|---:|---:|---:|']
        for name, mem in r['ramp']['memory'].items():
            lines.append(f'| {name} | {mem["clients"]:,} | {mem["rss_before_mib"]} | '
                         f'{mem["rss_after_mib"]} | {mem["kib_per_connection"]} |')
        lines += ['', f'RSS is the instance\'s gunicorn master + worker '
                  f'({r["ramp"]["rss_source"]}), read before connecting and after '
                  f'the hold.', '']
    else:
        lines += [f'Not measured: {r and r.get("error")}', '']

    rows = getattr(bench, 'sweep_rows', [])
    first_cfg = rows[0][1]['config'] if rows else {}
    members = first_cfg.get('clients', bench.args.room_clients)
    senders = first_cfg.get('senders', bench.args.senders)
    duration = first_cfg.get('duration', bench.args.duration)
    lines += ['## 2. Broadcast to one room of '
              f'{members:,} clients: rate sweep', '',
              f'{senders} senders share the rate; every message goes to '
              f'all {members:,} members (the sender too), so delivered '
              f'msg/s = rate x members. Each step runs {duration:g} s. '
              f'Pass = delivery ratio 1.000, p99 < {P99_LIMIT_MS:g} ms, valid run.', '',
              '| broadcasts/s | delivered msg/s | ratio | dup / ooo | p50 ms | p99 ms | '
              'p99 same / cross ms | max ms | generator CPU / loop lag p99 | '
              'cluster CPU | machine busy | pass |',
              '|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---|']
    for rate, res, ok in getattr(bench, 'sweep_rows', []):
        d = res['delivery']
        lat = d['latency_ms']
        lines.append(
            f'| {rate:g} | {d["delivered_per_second"]:,.0f} | {d["delivery_ratio"]:.6f} | '
            f'{d["duplicates"]} / {d["out_of_order"]} | {_ms(lat["all"]["p50"])} | '
            f'{_ms(lat["all"]["p99"])} | {_ms(lat["same_instance"]["p99"])} / '
            f'{_ms(lat["cross_instance"]["p99"])} | {_ms(lat["all"]["max"])} | '
            f'{_cpu(res, "send window")} / {_lag(res)} ms | {_cluster_cpu(res)} | '
            f'{_busy(res)} | {"yes" if ok else "**no**"}'
            f'{"" if res["valid"] else " (invalid: generator)"} |')
    best = getattr(bench, 'best', None)
    lines.append('')
    if best:
        d = best['delivery']
        lines += [f'**Result: {d["delivered_per_second"]:,.0f} delivered msg/s** '
                  f'({best["config"]["rate"]:g} broadcasts/s to '
                  f'{d["members"]:,} members) with p99 '
                  f'{_ms(d["latency_ms"]["all"]["p99"])} ms and delivery ratio '
                  f'{d["delivery_ratio"]:.3f}. Command: `{best["command"]}`', '']
        for p in best.get('plots', []):
            lines.append(f'![latency CDF]({_rel(p, base)})')
        lines.append('')
    else:
        lines += ['**No rate met p99 < 100 ms with ratio 1.000** (see the table).', '']
        shown = next((res for _, res, _ in rows if res['valid']), None)
        if shown:
            lines.append(f'Latency CDF of the lowest valid step '
                         f'({shown["config"]["rate"]:g} broadcasts/s):')
            lines.append('')
            for p in shown.get('plots', []):
                lines.append(f'![latency CDF]({_rel(p, base)})')
            lines.append('')

    size_rows = getattr(bench, 'size_rows', [])
    if size_rows:
        lines += ['### Room size at 1 broadcast/s', '',
                  'The same measurement at a gentle 1 broadcast/s for several room '
                  'sizes: what one broadcast costs as the room grows.', '',
                  '| members | delivered msg/s | ratio | p50 ms | p99 ms | max ms | '
                  'generator loop lag p99 | cluster CPU | machine busy | pass |',
                  '|---:|---:|---:|---:|---:|---:|---|---|---:|---|']
        for members, res, ok in size_rows:
            d = res['delivery']
            lat = d['latency_ms']['all']
            lines.append(f'| {members:,} | {d["delivered_per_second"]:,.0f} | '
                         f'{d["delivery_ratio"]:.6f} | {_ms(lat["p50"])} | '
                         f'{_ms(lat["p99"])} | {_ms(lat["max"])} | {_lag(res)} ms | '
                         f'{_cluster_cpu(res)} | {_busy(res)} | '
                         f'{"yes" if ok else "**no**"} |')
        lines.append('')
        largest = [res for _, res, ok in size_rows if ok]
        if largest:
            lines.append(f'Latency CDF of the largest passing room '
                         f'({largest[-1]["config"]["clients"]:,} members):')
            lines.append('')
            for p in largest[-1].get('plots', []):
                lines.append(f'![latency CDF]({_rel(p, base)})')
            lines.append('')
    lines += ['## 3. Reconnect after one of the instances goes away', '']
    for res in getattr(bench, 'reconnect_runs', []):
        rc, d = res['reconnect'], res['delivery']
        t, t2 = rc['time_to_back_and_receiving_ms'], rc['time_to_reconnected_ms']
        miss = rc['missed_per_affected_client']
        restore = res.get('restore', {})
        lines += [
            f'### {rc["mode"]} {rc["victim"]} ({rc["controller"]})', '',
            f'Command: `{res["command"]}`', '',
            f'- {rc["affected_clients"]:,} clients were on {rc["victim"]}; '
            f'{rc["back_and_receiving"]:,} were back and receiving again, '
            f'{_ms(rc["pct_back_within_deadline"])}% within {rc["deadline_s"]:g} s. '
            f'They landed on {rc["landed_after"]}.',
            f'- Kill to reconnected (`welcome`): p50 {_ms(t2["p50"])} ms, p99 '
            f'{_ms(t2["p99"])} ms, max {_ms(t2["max"])} ms.',
            f'- **Kill to back and receiving** (first broadcast after rejoining): '
            f'p50 {_ms(t["p50"])} ms, **p99 {_ms(t["p99"])} ms**, max {_ms(t["max"])} ms.',
            f'- **Messages missed** per affected client: p50 {miss["p50"]}, p99 '
            f'{miss["p99"]}, max {miss["max"]} (total {rc["missed_total_affected"]:,}); '
            f'clients on the other instances missed {rc["missed_total_unaffected"]}. '
            f'Socket.IO does not replay: what was broadcast while a client was away '
            f'is gone.',
            f'- Overall delivery ratio {d["delivery_ratio"]:.6f} at '
            f'{res["config"]["rate"]:g} broadcasts/s; p99 latency '
            f'{_ms(d["latency_ms"]["all"]["p99"])} ms.',
            f'- Restore: {restore.get("instance")} started again in '
            f'{restore.get("start_seconds")} s; new clients landed '
            f'{restore.get("probe_landed", restore.get("error"))}.', '']
        for p in res.get('plots', []):
            if p.endswith('timeline.png'):
                lines.append(f'![reconnect timeline]({_rel(p, base)})')
        lines.append('')
    problems = [(n, r) for n, r in bench.runs.items()
                if isinstance(r, dict) and (r.get('error') or r.get('problems'))]
    lines += ['## Problems and warnings recorded by the runs', '']
    if problems:
        for n, r in problems:
            lines.append(f'- {n}: {r.get("error") or "; ".join(r["problems"])}')
    else:
        lines.append('- none')
    for n, r in bench.runs.items():
        for w in (r.get('warnings') or []) if isinstance(r, dict) else []:
            lines.append(f'- {n} (warning): {w}')
    lines += ['', '## Rerun', '', '```', 'make local        # or: make up',
              'make bench', '```', '',
              'or, with a private native cluster on free ports that is stopped '
              'afterwards: `.venv/bin/python -m loadtest.bench --start-native`.', '']
    extra = getattr(bench.args, 'notes', None)
    if extra and Path(extra).exists():
        lines += [Path(extra).read_text().rstrip(), '']
    path.write_text('\n'.join(lines))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog='python -m loadtest.bench', description=__doc__)
    ap.add_argument('--url', default='http://127.0.0.1:8080')
    ap.add_argument('--origin', default='http://localhost:8081',
                    help='Origin header (must be in CORS_ALLOWED_ORIGINS)')
    ap.add_argument('--kill-via', default='auto', choices=('auto', 'native', 'docker'))
    ap.add_argument('--project', default='socketio-kit')
    ap.add_argument('--start-native', action='store_true',
                    help='start a private native cluster on free ports, stop it after')
    ap.add_argument('--instances', type=int, default=3)
    ap.add_argument('--worker-class', default='eventlet', choices=('eventlet', 'gevent'),
                    help='with --start-native: WORKER_CLASS of the instances')
    # More processes than cores: the cores are shared anyway, but each process
    # then has fewer clients whose burst of messages it must read in turn.
    ap.add_argument('--procs', type=int, default=4)
    ap.add_argument('--ramp-clients', type=int, default=10000)
    ap.add_argument('--room-clients', type=int, default=1500)
    ap.add_argument('--senders', type=int, default=10)
    ap.add_argument('--rates', type=lambda s: [float(x) for x in s.split(',')],
                    default=[0.5, 1, 2, 4, 8, 16, 32, 64])
    ap.add_argument('--max-p99-ms', type=float, default=5000,
                    help='stop the sweep once p99 exceeds this')
    ap.add_argument('--reconnect-rate', type=float, default=2)
    ap.add_argument('--duration', type=float, default=15)
    ap.add_argument('--connect-rate', type=float, default=1000)
    ap.add_argument('--sizes', type=lambda s: [int(x) for x in s.split(',')],
                    default=[150, 300, 600, 1000])
    ap.add_argument('--only', default='ramp,sweep,sizes,reconnect')
    ap.add_argument('--from-results', action='store_true',
                    help='only rewrite the markdown from the last results')
    # Relative paths, so the commands recorded in the results are portable.
    ap.add_argument('--out-dir', default=os.path.relpath(ROOT / 'bench'))
    ap.add_argument('--markdown', default=os.path.relpath(ROOT / 'BENCHMARKS.md'))
    ap.add_argument('--notes', default=os.path.relpath(ROOT / 'bench' / 'NOTES.md'),
                    help='hand-written findings appended to BENCHMARKS.md')
    args = ap.parse_args(argv)
    args.command = 'python -m loadtest.bench ' + ' '.join(argv if argv is not None
                                                        else sys.argv[1:])
    started = time.time()
    lc = None
    try:
        if args.from_results:
            bench = Bench(args, control.Controller(), args.url)
            bench.load()
            args.command = bench.meta.get('command', args.command)
            write_markdown(bench, Path(args.markdown), bench.meta.get('started', started),
                           bench.meta.get('note', ''))
            print(f'wrote {args.markdown}')
            return 0
        if args.start_native:
            run_dir = ROOT / '.run' / 'bench'
            lc = start_private_native(run_dir, args.instances, {
                'CORS_ALLOWED_ORIGINS': 'http://localhost:8081,http://127.0.0.1:8081',
                'WORKER_CLASS': args.worker_class, 'LOG_LEVEL': 'warning'})
            controller, url = control.NativeController(lc), lc.url
            note = (f'{args.instances} instances (gunicorn + {args.worker_class}, one worker '
                    f'each) + nginx + redis as native processes (private cluster '
                    f'on free ports, started by --start-native).')
        else:
            controller, url = control.detect(args.kill_via, None, args.project), args.url
            note = (f'{len(controller.instances())} instances behind nginx at {url}, '
                    f'controlled via {controller.kind}.')
        bench = Bench(args, controller, url)
        only = set(args.only.split(','))
        if 'ramp' in only:
            bench.ramp()
        if 'sweep' in only:
            bench.sweep()
        if 'sizes' in only:
            bench.sizes()
        if 'reconnect' in only:
            bench.reconnect()
        write_markdown(bench, Path(args.markdown), started, note)
        summary = {n: {'valid': r.get('valid'), 'problems': r.get('problems'),
                       'command': r.get('command'), 'out': r.get('out')}
                   if 'error' not in r else r for n, r in bench.runs.items()}
        summary['_meta'] = {'command': args.command, 'started': started, 'note': note}
        (Path(args.out_dir) / 'results' / 'summary.json').write_text(
            json.dumps(summary, indent=1))
        print(f'wrote {args.markdown}')
    finally:
        if lc is not None:
            lc.stop()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
