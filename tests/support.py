"""Helpers shared by the test suites: free ports, clusters, Socket.IO clients.

Every cluster a test starts runs on its own free loopback ports in its own
directory, and is stopped by PID when the test ends, pass or fail.
"""
import contextlib
import json
import queue
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import socketio

from doctor.wire import Response, Target, request
from native.cluster import LocalCluster, free_ports

ALLOWED_ORIGIN = 'http://localhost:8081'
ALLOWED_ORIGINS = 'http://localhost:8081,http://127.0.0.1:8081'
DENIED_ORIGIN = 'http://evil.example'
TEST_SETTINGS = {
    'CORS_ALLOWED_ORIGINS': ALLOWED_ORIGINS, 'CORS_CREDENTIALS': 'true',
    'SOCKETIO_PATH': '/socket.io', 'PING_INTERVAL': '25', 'PING_TIMEOUT': '20',
    'PROXY_TIMEOUT': '120', 'MAX_PAYLOAD_BYTES': '1000000',
    'WORKER_CLASS': 'eventlet', 'LOG_LEVEL': 'info',
    'SESSION_COOKIE': 'kit_session', 'NGINX_WORKER_CONNECTIONS': '20480',
}


def free_port() -> int:
    return free_ports(1)[0]


@contextlib.contextmanager
def local_cluster(run_dir: Path, instances: int = 3,
                  env: Optional[Dict[str, str]] = None) -> Iterator[LocalCluster]:
    """Start redis + N instances + nginx on free ports; always stop them.

    Every kit setting is given explicitly, so a developer's .env (which the
    Makefile exports) cannot make the instances and nginx disagree.
    """
    lc = LocalCluster.on_free_ports(Path(run_dir), instances,
                                    {**TEST_SETTINGS, **(env or {})})
    try:
        lc.start()
        yield lc
    finally:
        lc.stop()


# -- raw HTTP ------------------------------------------------------------------
def http_request(url: str, method: str = 'GET', path: str = '/',
                 headers: Optional[Dict[str, str]] = None, body: bytes = None,
                 timeout: float = 5.0) -> Response:
    """One request, keeping duplicate response headers (unlike requests); the
    doctor's own raw HTTP client."""
    return request(Target.parse(url), method, path, headers, body, timeout)


def eio_handshake(url: str, path: str = '/socket.io', origin: str = ALLOWED_ORIGIN
                  ) -> Tuple[Response, Optional[dict]]:
    """An Engine.IO v4 polling handshake; returns the response and open packet."""
    resp = http_request(url, path=f'{path}/?EIO=4&transport=polling',
                        headers={'Origin': origin})
    if resp.status != 200 or not resp.body.startswith(b'0'):
        return resp, None
    return resp, json.loads(resp.body[1:])


# -- Socket.IO clients -----------------------------------------------------------
class Client:
    """A python-socketio client that records what the demo contract sends."""

    def __init__(self, url: str, origin: str = ALLOWED_ORIGIN,
                 transports=('websocket',), reconnection=False,
                 path: str = '/socket.io'):
        # The WebSocket client would add its own Origin header next to ours,
        # the server would refuse the pair, and python-socketio would silently
        # stay on long-polling. Suppress it so our Origin is the only one.
        self.sio = socketio.Client(
            reconnection=reconnection, reconnection_delay=0.2,
            reconnection_delay_max=1, randomization_factor=0.2,
            websocket_extra_options={'suppress_origin': True})
        self.welcomes: 'queue.Queue[dict]' = queue.Queue()
        self.messages: 'queue.Queue[dict]' = queue.Queue()
        self.welcome: Optional[dict] = None
        self.sio.on('welcome', self._on_welcome)
        self.sio.on('message', self.messages.put)
        self.url, self.origin, self.path = url, origin, path
        self.transports = list(transports)

    def _on_welcome(self, data):
        self.welcome = data
        self.welcomes.put({**data, 'received_at': time.monotonic()})

    def connect(self, timeout: float = 10.0) -> 'Client':
        self.sio.connect(self.url, headers={'Origin': self.origin},
                         transports=self.transports, socketio_path=self.path,
                         wait_timeout=timeout)
        self.welcomes.get(timeout=timeout)
        return self

    @property
    def instance(self) -> Optional[str]:
        return self.welcome and self.welcome['instance']

    def call(self, event: str, data=None, timeout: float = 5.0):
        return self.sio.call(event, data, timeout=timeout)

    def drain(self, count: int, timeout: float = 5.0) -> List[dict]:
        """Collect count messages, or fewer if the deadline passes."""
        out, deadline = [], time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            try:
                out.append(self.messages.get(
                    timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                break
        return out

    def close(self):
        with contextlib.suppress(Exception):
            self.sio.disconnect()


@contextlib.contextmanager
def clients(url: str, count: int, **kwargs) -> Iterator[List[Client]]:
    opened: List[Client] = []
    try:
        for _ in range(count):
            opened.append(Client(url, **kwargs).connect())
        yield opened
    finally:
        for c in opened:
            c.close()


def spread(names: List[str]) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    return counts
