"""`python -m native` (make local, local-ps, local-down) as a person runs it,
on real processes: it hands the terminal back while the cluster keeps running,
and the commands after `up` find the cluster on the ports it was started on,
whatever port variables their own environment holds."""
import json
import os
import socket
import subprocess
import sys

import pytest

from control.detect import native_controller
from native.cluster import PORTS_RECORD, REQUIREMENTS_STAMPS, ROOT
from native.net import free_ports, http_get
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
        *table, app = ps.stdout.splitlines()[1:]
        rows = {line.split()[0]: line.split() for line in table}
        assert set(rows) == {'redis', 'app1', 'app2', 'nginx'}, ps.stdout
        assert app == 'app: demo.app:sio', ps.stdout
        for name in ('app1', 'app2'):
            assert rows[name][2:] == ['running', 'redis', 'ok'], ps.stdout
        assert rows['nginx'][2:] == ['running', 'ok'], ps.stdout
        assert rows['redis'][2] == 'running', ps.stdout

        # NGINX_WORKER_CONNECTIONS=20480 asks for 21504 open files, past the
        # hard limit of these machines (20000): native mode fits it under.
        errors = (run_dir / 'logs' / 'nginx-error.log').read_text()
        assert 'setrlimit' not in errors and 'exceed open file' not in errors, errors
    finally:
        down = native(run_dir, 'down', env=PATH)
    assert down.returncode == 0, down.stdout
    assert not (run_dir / PORTS_RECORD).exists()
    assert not (run_dir / NATIVE_SETTINGS).exists()
    assert not any(ProcessTable(run_dir).is_running(n) for n in ('redis', 'app1', 'app2', 'nginx'))


def cluster_env(instances: int, **settings: str) -> dict:
    """The environment of a `make local` on free ports, with settings."""
    http, redis_port, page, status, https = free_ports(5)
    return {**TEST_SETTINGS, **PATH, 'INSTANCES': str(instances),
            'HTTP_PORT': str(http), 'REDIS_PORT': str(redis_port),
            'PAGE_PORT': str(page), 'NGINX_STATUS_PORT': str(status),
            'HTTPS_PORT': str(https),
            'APP_BASE_PORT': str(consecutive_free_ports(instances)),
            'METRICS_BASE_PORT': str(consecutive_free_ports(instances)), **settings}


def hello(address: str):
    """teamchat's own HTTP route; the demo has none (404)."""
    return http_get(f'http://{address}/hello', timeout=5)


TEAMCHAT = {'hello': 'teamchat'}
KEPT = 'native: the running cluster keeps the settings it was started with'


def test_restarts_keep_the_application_the_cluster_was_started_with(tmp_path, monkeypatch):
    """`make local APP=app:app APP_PATH=examples/teamchat`, then local-stop,
    local-start, rolling-restart and local-ps without APP (or with another
    one): every instance started again serves teamchat, as it was started."""
    env = cluster_env(2, APP='app:app', APP_PATH='examples/teamchat')
    http = env['HTTP_PORT']
    run_dir = tmp_path / 'local'
    try:
        up = native(run_dir, 'up', env=env)
        assert up.returncode == 0, up.stdout
        assert f'  app (app:app): http://localhost:{http}/' in up.stdout.splitlines()
        assert 'page:' not in up.stdout
        record = json.loads((run_dir / PORTS_RECORD).read_text())
        ports = record['app_ports']
        assert record['settings']['APP_PATH'] == 'examples/teamchat'
        assert record['settings']['CORS_ALLOWED_ORIGINS'] == TEST_SETTINGS['CORS_ALLOWED_ORIGINS']
        assert oct((run_dir / PORTS_RECORD).stat().st_mode & 0o777) == '0o600'

        # make local-stop / local-start INSTANCE=app2, APP unset by then.
        for command in ('stop', 'start'):
            done = native(run_dir, command, 'app2', env=PATH)
            assert done.returncode == 0, done.stdout
            assert KEPT not in done.stdout
        status, body = hello(f'127.0.0.1:{ports["app2"]}')
        assert status == 200 and body['hello'] == 'teamchat', (status, body)

        # A different APP in the environment: kept out, said in one line.
        before = {name: ProcessTable(run_dir).pid(name) for name in ports}
        rolled = native(run_dir, 'rolling-restart', env={**PATH, 'APP': 'demo.app:sio'},
                        timeout=240)
        assert rolled.returncode == 0, rolled.stdout
        notices = [line for line in rolled.stdout.splitlines() if line.startswith(KEPT)]
        assert len(notices) == 1 and '(APP=app:app)' in notices[0], rolled.stdout
        for name, port in ports.items():
            assert ProcessTable(run_dir).pid(name) != before[name]
            status, body = hello(f'127.0.0.1:{port}')
            assert status == 200 and body == {**TEAMCHAT, 'instance': name}, (status, body)
        status, body = hello(f'127.0.0.1:{http}')  # through nginx
        assert status == 200 and body['hello'] == 'teamchat', (status, body)

        # make rolling-restart finds the cluster through control.detect.
        monkeypatch.setenv('APP', 'demo.app:sio')
        monkeypatch.delenv('APP_PATH', raising=False)
        control = native_controller(run_dir)
        assert control is not None and set(control.instances()) == set(ports)
        assert control.local.instance_env('app1')['APP'] == 'app:app'
        assert control.local.instance_env('app1')['APP_PATH'] == 'examples/teamchat'
        # (make test also exports INSTANCES, HTTP_PORT and PAGE_PORT: named too)
        assert 'APP=app:app' in control.local.ignored_notice()

        ps = native(run_dir, 'ps', env=PATH, timeout=60)
        assert ps.returncode == 0, ps.stdout
        assert ps.stdout.splitlines()[-1] == 'app: app:app from APP_PATH=examples/teamchat'

        # The emitter finds the cluster's Redis as the instances were given it.
        emit = subprocess.run(
            [sys.executable, '-m', 'socketio_kit.emit', '--room', 'r', '--event', 'e', '{}',
             '--native-run-dir', str(run_dir)], cwd=ROOT, env=PATH, capture_output=True,
            text=True, timeout=60, check=False)
        assert emit.returncode == 0, emit.stderr
    finally:
        down = native(run_dir, 'down', env=PATH)
    assert down.returncode == 0, down.stdout


def test_up_installs_the_applications_requirements_once(tmp_path):
    """APP_PATH/requirements.txt goes into the venv before anything starts,
    once per change of the file (a hash stamp in the run directory); a file
    pip refuses stops make local in one sentence, with nothing started."""
    app = tmp_path / 'myapp'
    app.mkdir()
    (app / 'app.py').write_text((ROOT / 'examples' / 'teamchat' / 'app.py').read_text())
    requirements = app / 'requirements.txt'
    requirements.write_text('# already in the venv: pip needs no index\nidna\n')
    env = cluster_env(1, APP='app:app', APP_PATH=str(app))
    run_dir = tmp_path / 'local'
    installing = f'installing {requirements} into '
    for attempt in (1, 2):
        try:
            up = native(run_dir, 'up', env=env, timeout=300)
            assert up.returncode == 0, up.stdout
            said = [line for line in up.stdout.splitlines() if line.startswith(installing)]
            assert len(said) == (1 if attempt == 1 else 0), up.stdout
            assert len(list((run_dir / REQUIREMENTS_STAMPS).glob('*.sha256'))) == 1
        finally:
            down = native(run_dir, 'down', env=PATH)
        assert down.returncode == 0, down.stdout

    requirements.write_text('idna\nthis is not a requirement ===\n')
    up = native(run_dir, 'up', env=env, timeout=300)
    assert up.returncode == 2, up.stdout
    assert up.stdout.count(installing) == 1, up.stdout
    error, = [line for line in up.stdout.splitlines() if line.startswith('error: ')]
    assert error.startswith(f'error: pip could not install {requirements} into '), up.stdout
    assert not any(ProcessTable(run_dir).is_running(n) for n in ('redis', 'app1', 'nginx'))
