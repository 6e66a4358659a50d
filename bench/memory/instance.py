"""The instance under test: a private redis-server and one instance started
with the real start command (or the tracemalloc wrapper), and its worker."""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from native.cluster import APP_START
from native.net import free_ports
from socketio_kit.config import KIT_PREFIX

ROOT = Path(__file__).resolve().parents[2]

ORIGIN = 'http://localhost:8081'
SETTINGS = {
    'CORS_ALLOWED_ORIGINS': ORIGIN, 'CORS_CREDENTIALS': 'true',
    'SOCKETIO_PATH': '/socket.io', 'PING_INTERVAL': '25', 'PING_TIMEOUT': '20',
    'MAX_PAYLOAD_BYTES': '1000000', 'LOG_LEVEL': 'warning',
    'SESSION_COOKIE': 'kit_session', 'WS_COMPRESSION': 'off',
}
WARMUP_CLIENTS = 20


def proc_status(pid: int) -> dict:
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
            # The start command with the wrapper config (gunicorn's -c wins
            # over GUNICORN_CMD_ARGS, so the wrapper cannot ride on it).
            argv = [sys.executable, '-m', 'gunicorn', '-c',
                    'python:bench.memory_gunicorn', 'socketio_kit.wsgi:application']
            env.update(BENCH_DUMP_DIR=str(dump_dir),
                       BENCH_TRACEMALLOC=str(frames))
        else:
            argv = APP_START
        log = open(run_dir / 'instance.log', 'wb')
        app = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
        started.append(app)
        deadline = time.monotonic() + 30
        while not _http_ok(app_port, f'{KIT_PREFIX}/healthz'):
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


def short_path(filename: str) -> str:
    for marker in ('site-packages/', '/lib/python3.11/', str(ROOT) + '/'):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename
