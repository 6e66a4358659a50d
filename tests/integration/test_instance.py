"""One instance started with the real start command, no balancer."""
import subprocess
import sys
import time

import pytest

from native.cluster import APP_START
from native.net import http_get
from native.processes import stop_child
from socketio_kit.config import child_env
from tests.support import free_port

pytestmark = pytest.mark.only_target('local')



def _run(env, timeout=20):
    return subprocess.run(APP_START, env=child_env({'PYTHON': sys.executable,
                                                  **env}),
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize('env, variable', [
    ({'CORS_ALLOWED_ORIGINS': '*', 'CORS_CREDENTIALS': 'true'}, 'CORS_CREDENTIALS'),
    ({'CORS_ALLOWED_ORIGINS': 'localhost:8081'}, 'CORS_ALLOWED_ORIGINS'),
    ({'SOCKETIO_PATH': 'socket.io'}, 'SOCKETIO_PATH'),
    ({'WORKER_CLASS': 'sync'}, 'WORKER_CLASS'),
])
def test_bad_config_stops_start_up_with_one_line(env, variable):
    result = _run({'INSTANCE_NAME': 'app1', 'BIND': f'127.0.0.1:{free_port()}',
                   **env})
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith('config error: ') and variable in lines[0]


@pytest.mark.parametrize('worker_class', ['eventlet', 'gevent'])
def test_healthz_reports_redis_down_with_503(worker_class):
    port = free_port()
    dead_redis = f'redis://127.0.0.1:{free_port()}/0'
    proc = subprocess.Popen(
        APP_START, env=child_env({'PYTHON': sys.executable, 'INSTANCE_NAME': 'solo',
                                'BIND': f'127.0.0.1:{port}',
                                'REDIS_URL': dead_redis,
                                'WORKER_CLASS': worker_class}),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        status, body = None, None
        while time.monotonic() < deadline:
            status, body = http_get(f'http://127.0.0.1:{port}/_kit/healthz', 3)
            if status is not None:
                break
            time.sleep(0.1)
        assert status == 503, body
        assert body == {'instance': 'solo', 'redis': 'down'}
    finally:
        stop_child(proc, 15)
