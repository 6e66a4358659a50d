"""The echo server the load generator's tests talk to: a plain
python-socketio server on a free loopback port, started once per module."""
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import free_port, http_request

SERVER = Path(__file__).with_name('echo_server.py')
ROOT = Path(__file__).resolve().parents[2]


def start_echo_server(*extra):
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(SERVER), str(port), *extra],
                            cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f'http://127.0.0.1:{port}'
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if http_request(url, path='/socket.io/?EIO=4&transport=polling',
                            headers={'Origin': 'http://localhost:8081'},
                            timeout=1).status == 200:
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError('echo server did not start')


@pytest.fixture(scope='module')
def server():
    proc, url = start_echo_server()
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope='module')
def polling_only_server():
    proc, url = start_echo_server('polling-only')
    yield url
    proc.terminate()
    proc.wait(10)
