"""The hostile suite's cluster and its after-attack check.

One native cluster (redis, 3 instances, nginx) per worker class (eventlet,
gevent) with the demo's strict event shapes, and one (eventlet) with the
default permissive shapes, on free loopback ports with the kit's DEFAULT
limits (only the ports, the origin list and the app are the tests' own). Every
case attacks, then `survivors` checks that the instances are intact: well-
behaved clients on every instance still connect and receive a broadcast across
instances, no worker was replaced (same PID), and each worker's memory stayed
within a bound of its baseline.
"""
import dataclasses
import os
from typing import Dict

import psutil
import pytest

from doctor.wire import client_frame
from tests.support import (
    ALLOWED_ORIGIN,
    Client,
    WebSocketSession,
    local_cluster,
    new_room,
)

# Defaults everywhere except what the test harness must set.
HOSTILE_ENV = {'MAX_PAYLOAD_BYTES': '100000'}
# What a worker may grow by over one attack (its baseline is ~40-60 MB).
RSS_BOUND = 48 * 2 ** 20


def frame(payload: bytes, opcode: int = 1, fin: bool = True) -> bytes:
    """One masked client frame (the mask is zero: cheap, and still valid)."""
    return client_frame(payload, (0x80 if fin else 0) | opcode, mask=b'\0\0\0\0')


@dataclasses.dataclass
class Hostile:
    lc: object
    baseline: Dict[str, tuple]  # name -> (worker pid, rss)
    strict: bool                # the demo's strict input shape, or the default

    @property
    def url(self) -> str:
        return self.lc.url

    def direct(self, name: str = 'app1') -> str:
        return f'http://127.0.0.1:{self.lc.app_ports[name]}'

    def worker(self, name: str) -> psutil.Process:
        return psutil.Process(self.lc.processes.pid(name)).children()[0]

    def log_size(self, name: str) -> int:
        return os.path.getsize(self.lc.processes.log_path(name))

    def log_text(self, name: str) -> str:
        return self.lc.processes.log_path(name).read_text(errors='replace')

    def session(self, name: str = 'app1') -> WebSocketSession:
        ws = WebSocketSession(self.direct(name))
        ws.connect()
        return ws

    def survivors(self):
        """Every instance serves well-behaved clients, unchanged and bounded."""
        names = list(self.lc.app_ports)
        members = [Client(self.direct(n)).connect() for n in names]
        try:
            room = new_room()
            for member in members:
                assert member.call('join', {'room': room})['ok']
            assert members[0].call('broadcast', {'room': room,
                                                 'data': 'alive'})['ok']
            for member in members:
                got = member.drain(1, timeout=5)
                assert [m['data'] for m in got] == ['alive'], member.instance
        finally:
            for member in members:
                member.close()
        for name in names:
            pid, rss = self.baseline[name]
            worker = self.worker(name)
            assert worker.pid == pid, f'{name}: worker replaced'
            growth = worker.memory_info().rss - rss
            print(f'[{name} RSS +{growth / 2**20:.1f} MiB since start]', end=' ')
            assert growth < RSS_BOUND, f'{name}: RSS grew by {growth} bytes'


# The demo contract with its strict input shape on eventlet and gevent, and
# on a server with the default, permissive shapes (several arguments, any
# JSON value, binary attachments), as an ordinary application has.
APPS = {'strict': 'demo.app:sio', 'permissive': 'tests.fixtures.permissive_demo:sio'}


@pytest.fixture(scope='session', params=[('eventlet', 'strict'), ('gevent', 'strict'),
                                         ('eventlet', 'permissive')],
                ids=lambda p: '-'.join(p))
def hostile(request, tmp_path_factory):
    worker_class, shapes = request.param
    env = {**HOSTILE_ENV, 'WORKER_CLASS': worker_class, 'APP': APPS[shapes]}
    with local_cluster(tmp_path_factory.mktemp(f'hostile-{worker_class}-{shapes}'), 3,
                       env) as lc:
        baseline = {}
        for name in lc.app_ports:
            warm = Client(f'http://127.0.0.1:{lc.app_ports[name]}').connect()
            warm.close()
            worker = psutil.Process(lc.processes.pid(name)).children()[0]
            baseline[name] = (worker.pid, worker.memory_info().rss)
        yield Hostile(lc, baseline, shapes == 'strict')


@pytest.fixture
def attack(hostile):
    """The cluster; after the case, the survivors check."""
    yield hostile
    hostile.survivors()


__all__ = ['ALLOWED_ORIGIN', 'frame']
