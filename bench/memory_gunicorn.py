"""gunicorn config for bench/memory.py: the kit's own config plus a memory dump.

`socketio_kit.gunicorn_conf` unchanged, and in the worker a SIGUSR2 handler that writes
what the worker holds to BENCH_DUMP_DIR/dump-<n>.json: gc object counts and
sizes per type, and (when BENCH_TRACEMALLOC is a frame count > 0, tracing
started in post_worker_init) a tracemalloc snapshot next to it. gunicorn's
worker resets SIGUSR2 to its default and never uses it (it handles QUIT, TERM,
INT, WINCH, USR1, ABRT), so the handler takes nothing from it.

Bench-only: the environment variables here are the benchmark's, not the kit's.
"""
import collections
import gc
import json
import os
import signal
import sys
import time
import tracemalloc

from socketio_kit.gunicorn_conf import *  # noqa: F401,F403 - the kit's settings as they are
from socketio_kit.gunicorn_conf import post_worker_init as _kit_post_worker_init

_DUMP_DIR = os.environ.get('BENCH_DUMP_DIR', '')
_FRAMES = int(os.environ.get('BENCH_TRACEMALLOC', '0') or 0)


def _gc_census():
    counts, sizes = collections.Counter(), collections.Counter()
    for obj in gc.get_objects():
        cls = type(obj)
        name = f'{getattr(cls, "__module__", "?")}.{cls.__qualname__}'
        counts[name] += 1
        try:
            sizes[name] += sys.getsizeof(obj)
        except Exception:
            pass
    return counts, sizes


def _dump(worker):
    n = len([f for f in os.listdir(_DUMP_DIR) if f.endswith('.json')])
    base = os.path.join(_DUMP_DIR, f'dump-{n}')
    started = time.monotonic()
    snap_path = None
    if tracemalloc.is_tracing():
        snap = tracemalloc.take_snapshot()
        snap_path = base + '.tracemalloc'
        snap.dump(snap_path)
        del snap
    traced = tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else None
    gc.collect()
    counts, sizes = _gc_census()
    app = worker.wsgi
    sio = getattr(app, 'sio', None)
    info = {
        'pid': os.getpid(),
        'tracemalloc': snap_path,
        'traced': traced,
        'gc_counts': dict(counts),
        'gc_sizes': dict(sizes),
        'sessions': len(sio.eio.sockets) if sio else None,
        'socketio_environ': len(getattr(sio, 'environ', {})) if sio else None,
    }
    info['seconds'] = round(time.monotonic() - started, 2)
    tmp = base + '.tmp'
    with open(tmp, 'w') as fh:
        json.dump(info, fh)
    os.rename(tmp, base + '.json')  # the bench waits for this name


def post_worker_init(worker):
    _kit_post_worker_init(worker)
    if _FRAMES > 0:
        tracemalloc.start(_FRAMES)
    if _DUMP_DIR:
        signal.signal(signal.SIGUSR2, lambda sig, frame: _safe_dump(worker))


def _safe_dump(worker):
    # An exception here would surface in whatever greenlet the signal hit.
    try:
        _dump(worker)
    except Exception:
        import traceback
        traceback.print_exc()
