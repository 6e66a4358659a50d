"""`python -m bench.memory`: see bench/memory/__init__.py."""
import argparse
import asyncio
import datetime
import json
import resource
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `python bench/memory` as well as -m
    sys.path.insert(0, str(ROOT))

from bench.memory import __doc__ as DOC  # noqa: E402
from bench.memory.report import machine, render  # noqa: E402
from bench.memory.runs import breakdown_run, rss_run  # noqa: E402


async def main_async(args) -> dict:
    results = {'machine': machine(),
               'date': datetime.date.today().isoformat(),
               'rss': [], 'breakdown': []}
    for wc in args.worker_class:
        print(f'[{wc}] RSS run: {args.clients} clients', flush=True)
        r = await rss_run(wc, args.clients, args.concurrency, args.settle)
        print(f'[{wc}] RSS {r["rss_before_kib"] / 1024:.1f} -> '
              f'{r["rss_after_kib"] / 1024:.1f} MiB, '
              f'{r["kib_per_conn"]:.1f} KiB/conn '
              f'(second half {r["kib_per_conn_second_half"]:.1f})', flush=True)
        results['rss'].append(r)
        if args.frames > 0:
            print(f'[{wc}] breakdown run (tracemalloc {args.frames} frames)',
                  flush=True)
            b = await breakdown_run(wc, args.clients, args.concurrency,
                                    args.settle, args.frames)
            print(f'[{wc}] traced {b["traced_growth_per_conn"] / 1024:.2f} '
                  f'KiB/conn: ' + ', '.join(
                      f'{c} {s / 1024:.2f}'
                      for c, (s, _) in b['categories'].items()), flush=True)
            results['breakdown'].append(b)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=DOC.split('\n')[0])
    parser.add_argument('--clients', type=int, default=10000)
    parser.add_argument('--worker-class', action='append',
                        choices=['eventlet', 'gevent'],
                        help='repeatable; default both')
    parser.add_argument('--concurrency', type=int, default=100,
                        help='handshakes in flight')
    parser.add_argument('--settle', type=float, default=3.0,
                        help='seconds idle before measuring')
    parser.add_argument('--frames', type=int, default=12,
                        help='tracemalloc frames; 0 skips the breakdown run')
    parser.add_argument('--out', default=str(ROOT / 'bench' / 'results' /
                                             'memory-breakdown'),
                        help='writes OUT.md and OUT.json')
    args = parser.parse_args(argv)
    args.worker_class = args.worker_class or ['eventlet', 'gevent']
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.clients + 1000
    if soft < need:  # the instance inherits it too
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)),
                                                    hard))
        if min(hard, need) < need:
            print(f'RLIMIT_NOFILE hard limit {hard} < {need}', file=sys.stderr)
            return 2
    # timeout(1) and friends send SIGTERM: stop what we started on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    results = asyncio.run(main_async(args))
    command = 'python -m bench.memory ' + ' '.join(argv if argv is not None
                                                   else sys.argv[1:])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix('.json').write_text(json.dumps(results, indent=1))
    out.with_suffix('.md').write_text(render(results, command.strip()))
    print(f'wrote {out.with_suffix(".md")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
