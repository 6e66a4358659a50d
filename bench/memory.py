"""Where the bytes of an idle WebSocket client go, on one instance.

Starts a private redis-server and ONE instance on free loopback ports, holds N
idle WebSocket Socket.IO clients on it (raw asyncio clients: HTTP upgrade, the
Engine.IO open packet, `40`, `welcome`, and a `3` for every `2`), and reports:

1. RSS of the gunicorn worker before and after, per connection. The instance
   runs with the real start command, `app/start`, nothing added.
2. A breakdown: the same again under `bench/memory_gunicorn.py` (the kit's
   gunicorn config plus a SIGUSR2 dump), with tracemalloc on in the worker.
   Allocations that survive are grouped by the innermost frame that says whose
   they are (environ/request, greenlets, engineio session, WebSocket
   connection, socketio session), and a gc census counts objects per
   connection. RSS growth minus traced growth estimates what tracemalloc cannot
   see: greenlet C-stack copies are traced (PyMem), but CPython 3.11 frame
   data-stack chunks of each greenlet (and allocator slack) are not.

Both for WORKER_CLASS=eventlet and gevent, one run at a time.

    python -m bench.memory                       # 10,000 clients, both classes
    python -m bench.memory --clients 2000 --worker-class gevent
"""
import argparse
import asyncio
import base64
import collections
import contextlib
import datetime
import importlib.metadata
import json
import linecache
import os
import platform
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/memory.py` as well as -m
    sys.path.insert(0, str(ROOT))

from native.cluster import free_ports  # noqa: E402

ORIGIN = 'http://localhost:8081'
SETTINGS = {
    'CORS_ALLOWED_ORIGINS': ORIGIN, 'CORS_CREDENTIALS': 'true',
    'SOCKETIO_PATH': '/socket.io', 'PING_INTERVAL': '25', 'PING_TIMEOUT': '20',
    'MAX_PAYLOAD_BYTES': '1000000', 'LOG_LEVEL': 'warning',
    'SESSION_COOKIE': 'kit_session', 'WS_COMPRESSION': 'off',
}
WARMUP_CLIENTS = 20

GREENLETS = 'greenlets (objects, C-stack copies, hub)'
# Innermost frame first, first rule that matches names the owner.
CATEGORIES = [
    ('environ / request objects', (
        'gunicorn/http/', 'gunicorn/workers/base_async.py', 'urllib/parse.py',
        'http/cookies.py', 'engineio/middleware.py', 'socketio/middleware.py',
        'app/wsgi.py')),
    ('WebSocket connection (kit WebSocket + green socket)', (
        'app/connection.py', 'app/websocket.py', 'app/greenio.py',
        'eventlet/greenio/', 'gevent/_socket', 'gevent/socket.py',
        '/socket.py', 'gunicorn/workers/geventlet.py',
        'gunicorn/workers/ggevent.py', 'gevent/server.py',
        'gevent/baseserver.py')),
    ('engineio session + queue', (
        'engineio/', 'app/engine.py', 'eventlet/queue.py', 'gevent/queue.py',
        'eventlet/event.py', 'eventlet/semaphore.py', 'gevent/event.py',
        '/queue.py', '/threading.py')),
    ('socketio session / rooms', (
        'socketio/', 'app/server.py', 'app/fanout.py', 'json/')),
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
def _proc_status(pid: int) -> dict:
    out = {}
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        key, _, value = line.partition(':')
        if key in ('VmRSS', 'RssAnon', 'RssFile', 'VmData'):
            out[key] = int(value.split()[0])  # KiB
    return out


def _children(pid: int):
    try:
        return [int(p) for p in
                Path(f'/proc/{pid}/task/{pid}/children').read_text().split()]
    except OSError:
        return []


def _stop(proc: subprocess.Popen, wait: float = 10.0):
    """Stop a process we started (it leads its own group) and its children."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the group of our own child
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def _http_ok(port: int, path: str) -> bool:
    import urllib.request
    try:
        with urllib.request.urlopen(f'http://127.0.0.1:{port}{path}',
                                    timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def instance(worker_class: str, run_dir: Path, breakdown: bool, frames: int):
    """redis-server + one instance; yields (port, worker pid, dump dir)."""
    redis_port, app_port = free_ports(2)
    started = []
    try:
        redis_log = open(run_dir / 'redis.log', 'wb')
        redis = subprocess.Popen(
            ['redis-server', '--port', str(redis_port), '--bind', '127.0.0.1',
             '--save', '', '--appendonly', 'no', '--dir', str(run_dir)],
            stdout=redis_log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
        started.append(redis)
        dump_dir = run_dir / 'dumps'
        dump_dir.mkdir(exist_ok=True)
        env = {**os.environ, **SETTINGS,
               'WORKER_CLASS': worker_class, 'INSTANCE_NAME': 'mem1',
               'BIND': f'127.0.0.1:{app_port}',
               'REDIS_URL': f'redis://127.0.0.1:{redis_port}/0',
               'PYTHON': sys.executable}
        if breakdown:
            # app/start's command with the wrapper config (gunicorn's -c wins
            # over GUNICORN_CMD_ARGS, so the wrapper cannot ride on app/start).
            argv = [sys.executable, '-m', 'gunicorn', '-c',
                    'python:bench.memory_gunicorn', 'app.wsgi:application']
            env.update(BENCH_DUMP_DIR=str(dump_dir),
                       BENCH_TRACEMALLOC=str(frames))
        else:
            argv = [str(ROOT / 'app' / 'start')]
        log = open(run_dir / 'instance.log', 'wb')
        app = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
        started.append(app)
        deadline = time.monotonic() + 30
        while not _http_ok(app_port, '/healthz'):
            if app.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('instance did not start:\n' + (
                    run_dir / 'instance.log').read_text()[-2000:])
            time.sleep(0.1)
        workers = _children(app.pid)
        if len(workers) != 1:
            raise RuntimeError(f'expected one worker, found {workers}')
        yield app_port, workers[0], dump_dir
    except BaseException:
        with contextlib.suppress(OSError):
            print('instance log tail:\n' + (run_dir / 'instance.log')
                  .read_text(errors='replace')[-3000:], file=sys.stderr)
        raise
    finally:
        for proc in reversed(started):
            _stop(proc)


def request_dump(worker: int, dump_dir: Path, index: int,
                 timeout: float = 900.0) -> dict:
    path = dump_dir / f'dump-{index}.json'
    os.kill(worker, signal.SIGUSR2)
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline or not Path(f'/proc/{worker}').exists():
            raise RuntimeError(f'no {path}: timed out or the worker died')
        time.sleep(0.2)
    return json.loads(path.read_text())


# -- clients ------------------------------------------------------------------
def _client_frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack('!BB', 0x81, 0x80 | len(payload)) + mask + masked


async def _read_frame(reader) -> str:
    b0, b1 = await reader.readexactly(2)
    size = b1 & 0x7F
    if size == 126:
        size = struct.unpack('!H', await reader.readexactly(2))[0]
    elif size == 127:
        size = struct.unpack('!Q', await reader.readexactly(8))[0]
    payload = await reader.readexactly(size)
    if b0 & 0x0F == 8:
        raise EOFError('server closed')
    return payload.decode(errors='replace')


class Fleet:
    """N idle Socket.IO clients on raw WebSockets."""

    def __init__(self, port: int):
        self.port = port
        self.welcomed = 0
        self.failed = 0
        self.errors = collections.Counter()
        self.writers = []
        self.tasks = []
        self.stop = asyncio.Event()

    async def _client(self, gate: asyncio.Semaphore, timeout: float):
        writer = None
        try:
            async with gate:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection('127.0.0.1', self.port), timeout)
                self.writers.append(writer)
                key = base64.b64encode(os.urandom(16)).decode()
                writer.write((
                    'GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n'
                    f'Host: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n'
                    'Connection: Upgrade\r\n'
                    f'Sec-WebSocket-Key: {key}\r\n'
                    f'Sec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n\r\n'
                ).encode())
                head = await asyncio.wait_for(
                    reader.readuntil(b'\r\n\r\n'), timeout)
                if b' 101 ' not in head.split(b'\r\n', 1)[0]:
                    raise ConnectionError(head.split(b'\r\n', 1)[0].decode())
                opened = await asyncio.wait_for(_read_frame(reader), timeout)
                if not opened.startswith('0{'):
                    raise ConnectionError(f'no open packet: {opened[:40]}')
                writer.write(_client_frame('40'))
                while True:
                    msg = await asyncio.wait_for(_read_frame(reader), timeout)
                    if msg == '2':
                        writer.write(_client_frame('3'))
                    elif msg.startswith('42["welcome"'):
                        break
            self.welcomed += 1
            while not self.stop.is_set():  # idle: answer pings only
                msg = await _read_frame(reader)
                if msg == '2':
                    writer.write(_client_frame('3'))
        except (OSError, EOFError, asyncio.IncompleteReadError,
                asyncio.TimeoutError, ConnectionError) as exc:
            if not self.stop.is_set():
                self.failed += 1
                self.errors[type(exc).__name__ + ': ' + str(exc)[:60]] += 1

    async def open(self, count: int, concurrency: int, deadline: float,
                   timeout: float = 30.0):
        """Connect count more clients; return once all are welcomed (or the
        deadline passes, or some failed)."""
        gate = asyncio.Semaphore(concurrency)
        target = self.welcomed + count
        failed0 = self.failed
        for _ in range(count):
            self.tasks.append(asyncio.ensure_future(self._client(gate, timeout)))
        end = time.monotonic() + deadline
        while self.welcomed + (self.failed - failed0) < target and \
                time.monotonic() < end:
            await asyncio.sleep(0.1)
        if self.welcomed < target:
            raise RuntimeError(f'only {self.welcomed}/{target} welcomed; '
                               f'errors: {dict(self.errors.most_common(5))}')

    async def close(self):
        self.stop.set()
        for w in self.writers:
            w.transport.abort()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.writers.clear()
        self.tasks.clear()


async def warm_up(port: int, concurrency: int):
    """A few clients come and go first, so that one-time costs (the ping
    loop, lazy imports, first-use caches) are in the baseline."""
    fleet = Fleet(port)
    await fleet.open(WARMUP_CLIENTS, concurrency, 60)
    await fleet.close()
    await asyncio.sleep(1.0)


# -- runs ---------------------------------------------------------------------
async def rss_run(worker_class: str, clients: int, concurrency: int,
                  settle: float) -> dict:
    with tempfile.TemporaryDirectory(prefix='bench-mem-') as tmp, \
            instance(worker_class, Path(tmp), False, 0) as (port, worker, _):
        await warm_up(port, concurrency)
        before = _proc_status(worker)
        fleet = Fleet(port)
        try:
            t0 = time.monotonic()
            await fleet.open(clients // 2, concurrency, 600)
            await asyncio.sleep(settle)
            mid = _proc_status(worker)
            await fleet.open(clients - clients // 2, concurrency, 600)
            connect_s = time.monotonic() - t0
            await asyncio.sleep(settle)
            after = _proc_status(worker)
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
        rss0 = _proc_status(worker)['VmRSS']
        before = request_dump(worker, dumps, 0)
        fleet = Fleet(port)
        try:
            await fleet.open(clients, concurrency, 900)
            await asyncio.sleep(settle)
            rss1 = _proc_status(worker)['VmRSS']
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
        site = f'{_short(inner.filename)}:{inner.lineno}'
        chain = ' < '.join(f'{_short(f.filename)}:{f.lineno}'
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


def _short(filename: str) -> str:
    for marker in ('site-packages/', '/lib/python3.11/', str(ROOT) + '/'):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


# -- report -------------------------------------------------------------------
def machine() -> dict:
    mem = next(line for line in Path('/proc/meminfo').read_text().splitlines()
               if line.startswith('MemTotal'))
    cpu = next((line.split(':', 1)[1].strip() for line in
                Path('/proc/cpuinfo').read_text().splitlines()
                if line.startswith('model name')), platform.machine())
    versions = {}
    for pkg in ('gunicorn', 'eventlet', 'gevent', 'greenlet',
                'python-engineio', 'python-socketio', 'redis'):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[pkg] = importlib.metadata.version(pkg)
    return {'nproc': os.cpu_count(), 'cpu': cpu,
            'ram_gib': round(int(mem.split()[1]) / 1024 / 1024, 1),
            'python': platform.python_version(), 'kernel': platform.release(),
            'versions': versions}


def render(results: dict, command: str) -> str:
    m = results['machine']
    lines = [
        '# Memory per idle WebSocket connection: where the bytes go',
        '',
        f'Measured {results["date"]} with `{command}` (bench/memory.py).',
        f'Machine: {m["nproc"]} cores ({m["cpu"]}), {m["ram_gib"]} GiB RAM, '
        f'Linux {m["kernel"]}, Python {m["python"]}; '
        + ', '.join(f'{k} {v}' for k, v in m['versions'].items()) + '.',
        '',
        'One instance (one gunicorn worker) and a private redis-server on free '
        'loopback ports; clients connect straight to the instance '
        '(`transport=websocket`, no compression offered), get `welcome`, and '
        f'stay idle. {WARMUP_CLIENTS} clients come and go before the baseline. '
        'Target: 25 KiB per connection.',
        '',
        '## RSS of the worker (the real start command, `app/start`)',
        '',
        '| worker class | clients | RSS before MiB | RSS after MiB | KiB per connection | '
        'KiB/conn, second half only | connect time s |',
        '|---|---:|---:|---:|---:|---:|---:|',
    ]
    for r in results['rss']:
        lines.append(
            f'| {r["worker_class"]} | {r["clients"]:,} | '
            f'{r["rss_before_kib"] / 1024:.1f} | {r["rss_after_kib"] / 1024:.1f} | '
            f'**{r["kib_per_conn"]:.1f}** | {r["kib_per_conn_second_half"]:.1f} | '
            f'{r["connect_seconds"]} |')
    for b in results['breakdown']:
        wc = b['worker_class']
        rss = next((r for r in results['rss'] if r['worker_class'] == wc), None)
        lines += ['', f'## Breakdown, {wc} ({b["clients"]:,} clients, '
                  f'tracemalloc {b["frames"]} frames)', '',
                  '| owner | KiB per connection | blocks per connection |',
                  '|---|---:|---:|']
        for cat, (size, blocks) in b['categories'].items():
            lines.append(f'| {cat} | {size / 1024:.2f} | {blocks:.1f} |')
        lines.append(f'| **traced by tracemalloc** | '
                     f'**{b["traced_growth_per_conn"] / 1024:.2f}** | |')
        if rss:
            untracked = rss['kib_per_conn'] - b['traced_growth_per_conn'] / 1024
            lines.append(f'| untraced (RSS/conn of the plain run minus traced):'
                         f' greenlet data-stack chunks, allocator slack | '
                         f'{untracked:.2f} | |')
            lines.append(f'| **RSS per connection (plain run)** | '
                         f'**{rss["kib_per_conn"]:.2f}** | |')
        lines += ['', f'Top allocation sites ({wc}; innermost frame, then '
                  'its callers), bytes per connection:', '',
                  '| site | called from | owner | B/conn |', '|---|---|---|---:|']
        for site, chain, cat, size in b['top_sites'][:20]:
            lines.append(f'| `{site}` | `{chain}` | {cat} | {size:.0f} |')
        lines += ['', f'gc census ({wc}): objects per connection by type '
                  f'({b["gc_objects_per_conn"]:.1f} gc-tracked objects per '
                  'connection; sizes are sys.getsizeof, shallow):', '',
                  '| type | objects/conn | B/conn (shallow) |',
                  '|---|---:|---:|']
        for name, count, size in b['gc'][:20]:
            lines.append(f'| `{name}` | {count:.2f} | {size:.0f} |')
    return '\n'.join(lines) + '\n'


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
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
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
