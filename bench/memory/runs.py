"""The two runs: RSS with the real start command, and the tracemalloc
breakdown grouped by whose the allocations are."""
import asyncio
import collections
import linecache
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench.memory.fleet import Fleet, warm_up
from bench.memory.instance import instance, proc_status, request_dump, short_path

GREENLETS = 'greenlets (objects, C-stack copies, hub)'
# Innermost frame first, first rule that matches names the owner.
CATEGORIES = [
    ('environ / request objects', (
        'gunicorn/http/', 'gunicorn/workers/base_async.py', 'urllib/parse.py',
        'http/cookies.py', 'engineio/middleware.py', 'socketio/middleware.py',
        'socketio_kit/wsgi.py')),
    ('WebSocket connection (kit WebSocket + green socket)', (
        'socketio_kit/transport/connection.py', 'socketio_kit/transport/websocket.py',
        'socketio_kit/transport/greenio.py',
        'eventlet/greenio/', 'gevent/_socket', 'gevent/socket.py',
        '/socket.py', 'gunicorn/workers/geventlet.py',
        'gunicorn/workers/ggevent.py', 'gevent/server.py',
        'gevent/baseserver.py')),
    ('engineio session + queue', (
        'engineio/', 'socketio_kit/transport/engine.py', 'eventlet/queue.py', 'gevent/queue.py',
        'eventlet/event.py', 'eventlet/semaphore.py', 'gevent/event.py',
        '/queue.py', '/threading.py')),
    ('socketio session / rooms', (
        'socketio/', 'socketio_kit/server.py', 'socketio_kit/cluster/fanout.py', 'json/')),
    (GREENLETS, (
        'eventlet/greenthread.py', 'eventlet/greenpool.py', 'eventlet/hubs/',
        'gevent/pool.py', 'gevent/greenlet.py', 'gevent/hub.py',
        'gevent/_hub', 'gevent/_greenlet', 'gevent/_abstract_linkable',
        'greenlet/')),
]
OTHER = 'other'


def categorize(traceback) -> str:
    # A block allocated on a line that switches greenlets is a C-stack copy
    # (greenlet saves the stack it leaves with PyMem): the reader's, when it
    # waits in recv (eventlet: hub.switch; gevent: socket._wait).
    inner = traceback[-1]
    line = linecache.getline(inner.filename, inner.lineno)
    if 'switch(' in line or '._wait(' in line:
        return GREENLETS
    for frame in reversed(traceback):  # innermost first
        name = frame.filename.replace('\\', '/')
        for category, needles in CATEGORIES:
            if any(n in name for n in needles):
                return category
    return OTHER


# -- processes ----------------------------------------------------------------


async def rss_run(worker_class: str, clients: int, concurrency: int,
                  settle: float) -> dict:
    with tempfile.TemporaryDirectory(prefix='bench-mem-') as tmp, \
            instance(worker_class, Path(tmp), False, 0) as (port, worker, _):
        await warm_up(port, concurrency)
        before = proc_status(worker)
        fleet = Fleet(port)
        try:
            t0 = time.monotonic()
            await fleet.open(clients // 2, concurrency, 600)
            await asyncio.sleep(settle)
            mid = proc_status(worker)
            await fleet.open(clients - clients // 2, concurrency, 600)
            connect_s = time.monotonic() - t0
            await asyncio.sleep(settle)
            after = proc_status(worker)
        finally:
            await fleet.close()
        half = clients - clients // 2
        return {
            'worker_class': worker_class, 'clients': clients,
            'rss_before_kib': before['VmRSS'], 'rss_mid_kib': mid['VmRSS'],
            'rss_after_kib': after['VmRSS'],
            'anon_before_kib': before['RssAnon'],
            'anon_after_kib': after['RssAnon'],
            'kib_per_conn': (after['VmRSS'] - before['VmRSS']) / clients,
            'kib_per_conn_second_half': (after['VmRSS'] - mid['VmRSS']) / half,
            'connect_seconds': round(connect_s, 1),
        }


def _load_snapshot(path: str) -> tracemalloc.Snapshot:
    snap = tracemalloc.Snapshot.load(path)
    return snap.filter_traces([
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, '<frozen importlib._bootstrap>'),
        tracemalloc.Filter(False, '<frozen importlib._bootstrap_external>'),
    ])


async def breakdown_run(worker_class: str, clients: int, concurrency: int,
                        settle: float, frames: int) -> dict:
    with tempfile.TemporaryDirectory(prefix='bench-mem-') as tmp, \
            instance(worker_class, Path(tmp), True, frames) as (
                port, worker, dumps):
        await warm_up(port, concurrency)
        rss0 = proc_status(worker)['VmRSS']
        before = request_dump(worker, dumps, 0)
        fleet = Fleet(port)
        try:
            await fleet.open(clients, concurrency, 900)
            await asyncio.sleep(settle)
            rss1 = proc_status(worker)['VmRSS']
            after = request_dump(worker, dumps, 1)
        finally:
            await fleet.close()
        snap0 = _load_snapshot(before['tracemalloc'])
        snap1 = _load_snapshot(after['tracemalloc'])
    diffs = snap1.compare_to(snap0, 'traceback')
    by_cat = collections.Counter()
    blocks_by_cat = collections.Counter()
    sites = collections.Counter()
    site_cat = {}
    for d in diffs:
        cat = categorize(d.traceback)
        by_cat[cat] += d.size_diff
        blocks_by_cat[cat] += d.count_diff
        inner = d.traceback[-1]
        site = f'{short_path(inner.filename)}:{inner.lineno}'
        chain = ' < '.join(f'{short_path(f.filename)}:{f.lineno}'
                           for f in list(reversed(d.traceback))[1:4])
        key = (site, chain)
        sites[key] += d.size_diff
        site_cat[key] = cat
    counts0, counts1 = before['gc_counts'], after['gc_counts']
    sizes0, sizes1 = before['gc_sizes'], after['gc_sizes']
    gc_rows = []
    for name in set(counts0) | set(counts1):
        dc = counts1.get(name, 0) - counts0.get(name, 0)
        ds = sizes1.get(name, 0) - sizes0.get(name, 0)
        if dc or ds:
            gc_rows.append((name, dc / clients, ds / clients))
    gc_rows.sort(key=lambda r: -r[2])
    traced = sum(by_cat.values())
    return {
        'worker_class': worker_class, 'clients': clients, 'frames': frames,
        'traced_growth': traced,
        'traced_growth_per_conn': traced / clients,
        'rss_growth_traced_run_kib': rss1 - rss0,
        'categories': {c: (s / clients, blocks_by_cat[c] / clients)
                       for c, s in by_cat.most_common()},
        'top_sites': [(site, chain, site_cat[(site, chain)], size / clients)
                      for (site, chain), size in sites.most_common(30)],
        'gc': gc_rows[:30],
        'gc_objects_per_conn': sum(r[1] for r in gc_rows),
        'dump_seconds': after['seconds'],
        'sessions_seen': after['sessions'],
    }


