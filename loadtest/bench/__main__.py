"""`python -m loadtest.bench`: options, the clusters, and the order of runs."""
import argparse
import contextlib
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from control.base import KIT_PREFIX
from loadtest import control
from loadtest.bench import __doc__ as DOC
from loadtest.bench.markdown import write_markdown
from loadtest.bench.results import Results
from loadtest.bench.steps import Bench
from loadtest.config import Config
from loadtest.environment import ROOT
from loadtest.run import get_json

SECTIONS = ('sweep', 'hold', 'slow', 'reconnect', 'workers', 'compose')


def numbers(text: str):
    return [float(x) for x in text.split(',') if x]


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog='python -m loadtest.bench', description=DOC,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add = ap.add_argument
    add('--url', default=Config.url, help='the running cluster')
    add('--origin', default=Config.origin, help='in CORS_ALLOWED_ORIGINS')
    add('--kill-via', default='auto', choices=('auto', 'native', 'docker'))
    add('--project', default='socketio-kit', help='compose project name')
    add('--start-native', action='store_true',
        help='start a private native cluster on free ports per worker class; stop it after')
    add('--instances', type=int, default=3)
    add('--worker-class', default='eventlet,gevent',
        help='with --start-native: WORKER_CLASS of the instances; the first runs '
             'every section, the others the sweep (section "workers")')
    add('--compose-url', default=None,
        help='also sweep the running compose cluster at this URL (section "compose")')
    add('--procs', type=int, default=1, help='generator processes')
    add('--compression', default='on', choices=('on', 'off'),
        help='the generator offers permessage-deflate like a browser (on)')
    add('--latency-every', type=int, default=4, help='latency on every k-th client')
    add('--room-clients', type=int, default=300)
    add('--senders', type=int, default=5)
    add('--duration', type=float, default=10, help='seconds per step')
    add('--drain', type=float, default=3)
    add('--delivered', type=numbers, default=[6000, 12000, 30000, 60000, 100000, 120000],
        help='sweep steps in delivered msg/s (comma list)')
    add('--max-delivered', type=float, default=1_000_000, help='highest step past the list')
    add('--p99-ms', type=float, default=250, help='a step passes under this p99')
    add('--stop-p99-ms', type=float, default=5000, help='the sweep stops past this p99')
    add('--hold-clients', type=int, default=10000)
    add('--hold-seconds', type=float, default=10)
    add('--slow-delivered', type=float, default=60000)
    add('--reconnect-rate', type=float, default=20, help='broadcasts/s while killing')
    add('--connect-rate', type=float, default=1000)
    add('--only', default=','.join(SECTIONS), help='comma list of sections')
    add('--from-results', action='store_true',
        help='only rewrite the markdown from bench/results/summary.json')
    # Relative paths, so the commands recorded in the results are portable.
    add('--out-dir', default=os.path.relpath(ROOT / 'bench'))
    add('--markdown', default=os.path.relpath(ROOT / 'BENCHMARKS.md'))
    add('--notes', default=os.path.relpath(ROOT / 'bench' / 'NOTES.md'),
        help='hand-written findings appended to BENCHMARKS.md')
    return ap


@dataclass
class Target:
    url: str
    controller: control.Controller
    note: str


@contextlib.contextmanager
def native_target(args, worker_class: str):
    """A native cluster (same code as `make local`) on free loopback ports."""
    from native.cluster import LocalCluster
    run_dir = ROOT / '.run' / f'bench-{worker_class}'
    run_dir.mkdir(parents=True, exist_ok=True)
    cluster = LocalCluster.on_free_ports(run_dir, args.instances, {
        'CORS_ALLOWED_ORIGINS': 'http://localhost:8081,http://127.0.0.1:8081',
        'WORKER_CLASS': worker_class, 'LOG_LEVEL': 'warning',
        # The generator is one address: the per-address limits (sized for
        # an office behind one NAT) would refuse the 10,000-client hold.
        'NGINX_CONNECTIONS_PER_ADDRESS': '0', 'NGINX_HANDSHAKES_PER_SECOND': '0',
        'RATE_ADDRESS_BYTES_PER_SECOND': '0', 'RATE_ADDRESS_EVENTS_PER_SECOND': '0'})
    cluster.stop()  # what a crashed earlier bench left running, by its PID files
    cluster.start()
    try:
        yield Target(cluster.url, control.NativeController(cluster),
                     f'{args.instances} instances (gunicorn + {worker_class}, one worker '
                     f'each) + nginx + Redis as native processes, started by --start-native')
    finally:
        cluster.stop()


@contextlib.contextmanager
def running_target(url, kill_via, project):
    health = f'{url.rstrip("/")}{KIT_PREFIX}/healthz'
    status, body = get_json(health)
    if status != 200:
        raise SystemExit(f'bench: no cluster answers at {health} ({body}): start one '
                         f'(make local / make up) or pass --start-native.')
    ctl = control.detect(kill_via, None, project)
    yield Target(url, ctl, f'{len(ctl.instances())} instances behind nginx at {url}, '
                           f'reached via {ctl.kind}')


# What a full run writes; other committed results (bench/memory, profiles,
# subdirectories) are not the bench's to remove.
OWN_RESULTS = ('sweep-*', 'hold*', 'slow-consumer*', 'reconnect-*', 'summary.json')


def remove_stale(results_dir: Path):
    """A full run replaces its whole record: no step of an earlier run survives."""
    for pattern in OWN_RESULTS:
        for old in results_dir.glob(pattern):
            if old.suffix in ('.json', '.png'):
                old.unlink()


def run_all(args, bench: Bench, only):
    classes = args.worker_class.split(',')
    main = native_target(args, classes[0]) if args.start_native else \
        running_target(args.url, args.kill_via, args.project)
    label = classes[0] if args.start_native else 'running'
    with main as target:
        if only >= set(SECTIONS) - {'compose'}:
            remove_stale(bench.results_dir)
        bench.results.meta['clusters'][label] = target.note
        if 'sweep' in only:
            bench.sweep(label, target)
        if 'hold' in only:
            bench.hold(target)
        if 'slow' in only:
            bench.slow_consumer(target)
        if 'reconnect' in only:
            bench.reconnect(target)
    if args.start_native and 'workers' in only:
        for worker_class in classes[1:]:
            with native_target(args, worker_class) as target:
                bench.results.meta['clusters'][worker_class] = target.note
                bench.sweep(worker_class, target)
    if args.compose_url and 'compose' in only:
        with running_target(args.compose_url, 'docker', args.project) as target:
            bench.results.meta['clusters']['compose'] = target.note
            bench.sweep('compose', target)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    results_dir = Path(args.out_dir) / 'results'
    if args.from_results:
        results = Results.load(results_dir)
    else:
        only = set(args.only.split(','))
        results = Results({'command': shlex.join(['python', '-m', 'loadtest.bench', *argv]),
                           'started': time.time(), 'clusters': {},
                           'options': dict(vars(args))})
        try:
            run_all(args, Bench(args, results, results_dir), only)
        finally:
            if results.runs:
                results.save(results_dir)
    write_markdown(results, Path(args.markdown), Path(args.notes))
    print(f'wrote {args.markdown}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
