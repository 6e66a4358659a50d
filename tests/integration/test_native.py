"""`python -m native` (make local, local-ps, local-down) as a person runs it,
on real processes: it hands the terminal back while the cluster keeps running,
and the commands after `up` find the cluster on the ports it was started on,
whatever port variables their own environment holds."""
import os
import socket
import subprocess
import sys

import pytest

from native.cluster import PORTS_RECORD, ROOT
from native.net import free_ports
from native.processes import ProcessTable
from socketio_kit.emit import NATIVE_SETTINGS
from tests.support import TEST_SETTINGS

# Private native clusters: under --target compose these are skipped.
pytestmark = pytest.mark.only_target('local')

PATH = {'PATH': f'{os.environ.get("PATH", "/usr/bin:/bin")}:/usr/sbin'}


def consecutive_free_ports(count: int) -> int:
    """The first of count free loopback ports in a row (APP_BASE_PORT,
    METRICS_BASE_PORT: instance i listens on base + i)."""
    for base in free_ports(50):
        socks = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(('127.0.0.1', port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise AssertionError(f'no {count} free ports in a row')


def native(run_dir, *args, env, timeout=120):
    """Run `python -m native ARGS --run-dir run_dir` with its output on a
    pipe, as `make local 2>&1 | tail` gives it one."""
    return subprocess.run([sys.executable, '-m', 'native', *args, '--run-dir', str(run_dir)],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout, check=False)


def test_spawned_processes_let_go_of_the_callers_output(tmp_path):
    """A process spawned in the background (and its log rotator) does not
    keep the spawner's stdout or stderr: a reader of them sees their end
    when the spawner exits, not when the process does."""
    table = ProcessTable(tmp_path)
    spawner = subprocess.Popen(
        [sys.executable, '-c', 'import sys; from native.processes import ProcessTable; '
         'ProcessTable(sys.argv[1]).spawn("sleeper", ["sleep", "60"]); print("spawned")',
         str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, _ = spawner.communicate(timeout=20)
        assert out.strip() == 'spawned'
        assert table.is_running('sleeper')
    finally:
        spawner.kill()
        spawner.wait()
        table.send_signal('sleeper')


def test_up_returns_and_ps_reads_the_ports_it_started_on(tmp_path):
    http, redis_port, page, status, https = free_ports(5)
    started_env = {**TEST_SETTINGS, **PATH, 'INSTANCES': '2',
                   'HTTP_PORT': str(http), 'REDIS_PORT': str(redis_port),
                   'PAGE_PORT': str(page), 'NGINX_STATUS_PORT': str(status),
                   'HTTPS_PORT': str(https),
                   'APP_BASE_PORT': str(consecutive_free_ports(2)),
                   'METRICS_BASE_PORT': str(consecutive_free_ports(2))}
    run_dir = tmp_path / 'local'
    try:
        # Returns although instances, nginx and redis keep running.
        up = native(run_dir, 'up', env=started_env)
        assert up.returncode == 0, up.stdout
        assert 'instances healthy' in up.stdout
        assert (run_dir / PORTS_RECORD).exists()
        assert oct((run_dir / NATIVE_SETTINGS).stat().st_mode & 0o777) == '0o600'

        # No port variable at all: the defaults (8080, 8001, 3 instances) are not it.
        ps = native(run_dir, 'ps', env=PATH, timeout=60)
        assert ps.returncode == 0, ps.stdout
        rows = {line.split()[0]: line.split() for line in ps.stdout.splitlines()[1:]}
        assert set(rows) == {'redis', 'app1', 'app2', 'nginx'}, ps.stdout
        for name in ('app1', 'app2'):
            assert rows[name][2:] == ['running', 'redis', 'ok'], ps.stdout
        assert rows['nginx'][2:] == ['running', 'ok'], ps.stdout
        assert rows['redis'][2] == 'running', ps.stdout
    finally:
        down = native(run_dir, 'down', env=PATH)
    assert down.returncode == 0, down.stdout
    assert not (run_dir / PORTS_RECORD).exists()
    assert not (run_dir / NATIVE_SETTINGS).exists()
    assert not any(ProcessTable(run_dir).is_running(n) for n in ('redis', 'app1', 'app2', 'nginx'))
