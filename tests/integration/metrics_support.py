"""Helpers of the metrics tests: scrape an instance, run a client in a process
of its own (so a test can SIGKILL or SIGSTOP it like a crashed or frozen
browser), wait for a metric to reach a value."""
import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import Callable, Dict, Iterator, Tuple

import requests
from prometheus_client.parser import text_string_to_metric_families

from native.cluster import ROOT

Samples = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]

# A python-socketio client (it answers pings) that says where it landed and
# stays until killed, for at most 120 s.
CLIENT = '''
import sys, time
from tests.support import Client
client = Client(sys.argv[1], transports=[sys.argv[2]]).connect()
print(client.instance, flush=True)
time.sleep(120)
'''


def scrape(port: int, path: str = '/metrics') -> Samples:
    """Every sample of one instance's /metrics: {(name, labels): value}."""
    resp = requests.get(f'http://127.0.0.1:{port}{path}', timeout=5)
    assert resp.status_code == 200, resp.text
    assert resp.headers['Content-Type'].startswith('text/plain; version=0.0.4')
    out = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, metric: str, **labels) -> float:
    return samples.get((metric, tuple(sorted(labels.items()))), 0.0)


def connected(samples: Samples) -> float:
    return sum(value(samples, 'socketio_connected_clients', transport=t)
               for t in ('websocket', 'polling'))


def wait_for(check: Callable[[], bool], timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f'{what}: not within {timeout:.0f}s')


@contextlib.contextmanager
def client_process(url: str, transport: str = 'websocket'
                   ) -> Iterator[Tuple[subprocess.Popen, str]]:
    """A client in its own process: (process, instance it landed on)."""
    proc = subprocess.Popen([sys.executable, '-c', CLIENT, url, transport],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, 'PYTHONPATH': str(ROOT)})
    try:
        line = proc.stdout.readline().strip()
        assert line, 'the client process did not connect'
        yield proc, line
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
