"""Helpers shared by the test suites: free ports, clusters, sessions, clients.

Every cluster a test starts runs on its own free loopback ports in its own
directory, and is stopped by PID when the test ends, pass or fail. Raw HTTP
and WebSocket go through the doctor's client (doctor.wire), which keeps what
other clients hide (duplicate headers, the status of a refused upgrade).
"""
import contextlib
import ipaddress
import json
import os
import queue
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest
import socketio

from doctor.wire import (
    Response,
    Target,
    WebSocket,
    decode_payload,
    eio_query,
    open_packet,
    request,
    websocket,
)
from native.cluster import ROOT, LocalCluster
from native.net import free_ports

ALLOWED_ORIGIN = 'http://localhost:8081'
ALLOWED_ORIGINS = 'http://localhost:8081,http://127.0.0.1:8081'
DENIED_ORIGIN = 'http://evil.example'
PATH = '/socket.io'
TEST_SETTINGS = {
    'CORS_ALLOWED_ORIGINS': ALLOWED_ORIGINS, 'CORS_CREDENTIALS': 'true',
    'SOCKETIO_PATH': PATH, 'PING_INTERVAL': '25', 'PING_TIMEOUT': '20',
    'PROXY_TIMEOUT': '120', 'MAX_PAYLOAD_BYTES': '1000000',
    'WORKER_CLASS': 'eventlet', 'LOG_LEVEL': 'info',
    'SESSION_COOKIE': 'kit_session', 'NGINX_WORKER_CONNECTIONS': '20480',
}

# The token every test client sends with its CONNECT when the cluster under
# test runs AUTH_MODE=jwt, as the Swarm stack does by default (`make
# test-swarm` mints it with `make swarm-token`'s tool); unset for the
# tokenless demo. Node scripts and the doctor get it too.
TOKEN = os.environ.get('KIT_TEST_TOKEN') or None
AUTH = {'token': TOKEN} if TOKEN else None
CONNECT = '40' + (json.dumps(AUTH) if AUTH else '')


def free_port() -> int:
    return free_ports(1)[0]


@contextlib.contextmanager
def local_cluster(run_dir: Path, instances: int = 3,
                  env: Optional[Dict[str, str]] = None) -> Iterator[LocalCluster]:
    """Start redis + N instances + nginx on free ports; always stop them.

    Every kit setting is given explicitly, so a developer's .env (which the
    Makefile exports) cannot make the instances and nginx disagree.
    """
    local = LocalCluster.on_free_ports(Path(run_dir), instances,
                                       {**TEST_SETTINGS, **(env or {})})
    try:
        local.start()
        yield local
    finally:
        local.stop()


def run_doctor(url: str, *args: str, origin: str = ALLOWED_ORIGIN,
               timeout: float = 120):
    """Run `python -m doctor --json`; (exit code, report, {check: result})."""
    proc = subprocess.run(
        [sys.executable, '-m', 'doctor', url, '--origin', origin, '--json',
         *(['--token', TOKEN] if TOKEN else []), *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False)
    assert proc.stdout, proc.stderr
    report = json.loads(proc.stdout)
    return proc.returncode, report, {r['check']: r for r in report['results']}


# -- raw HTTP and WebSocket (doctor.wire) ------------------------------------------
def http_request(url: str, method: str = 'GET', path: str = '/',
                 headers: Optional[Dict[str, str]] = None, body: bytes = None,
                 timeout: float = 5.0) -> Response:
    """One request, keeping duplicate response headers (unlike requests)."""
    return request(Target.parse(url), method, path, headers, body, timeout)


def eio_handshake(url: str, path: str = PATH, origin: str = ALLOWED_ORIGIN
                  ) -> Tuple[Response, Optional[dict]]:
    """An Engine.IO v4 polling handshake; returns the response and open packet."""
    resp = http_request(url, path=eio_query(path, transport='polling'),
                        headers={'Origin': origin})
    return resp, open_packet(resp)


# What Chrome and socket.io-client offer on every WebSocket connection.
BROWSER_OFFER = 'permessage-deflate; client_max_window_bits'


def websocket_upgrade(url: str, origin: str = ALLOWED_ORIGIN,
                      extensions: Optional[str] = None
                      ) -> Tuple[Response, Optional[WebSocket]]:
    """A WebSocket handshake through the balancer: (response, socket if 101)."""
    headers = {'Origin': origin}
    if extensions:
        headers['Sec-WebSocket-Extensions'] = extensions
    return websocket(Target.parse(url), eio_query(PATH, transport='websocket'),
                     headers)


def offered(url: str, extensions: str = BROWSER_OFFER) -> List[str]:
    """The Sec-WebSocket-Extensions a server answers an offer with."""
    resp, ws = websocket_upgrade(url, extensions=extensions)
    assert ws is not None, resp.brief()
    ws.close()
    return resp.values('Sec-WebSocket-Extensions')


class PollingSession:
    """A raw Engine.IO long-polling session, to watch where each request lands."""

    def __init__(self, url: str):
        self.url = url
        resp, packet = eio_handshake(url)
        assert packet, resp
        self.sid = packet['sid']
        # Sent back like a browser does: the session is bound to it.
        self.cookie = resp.cookies()

    @property
    def headers(self) -> Dict[str, str]:
        cookie = {'Cookie': self.cookie} if self.cookie else {}
        return {'Origin': ALLOWED_ORIGIN, **cookie}

    @property
    def query(self) -> str:
        return eio_query(PATH, transport='polling', sid=self.sid)

    def post(self, payload: str):
        resp = http_request(self.url, 'POST', self.query,
                            {**self.headers,
                             'Content-Type': 'text/plain;charset=UTF-8'},
                            payload.encode())
        assert resp.status == 200, (resp.status, resp.body)

    def get(self) -> List[str]:
        resp = http_request(self.url, 'GET', self.query, self.headers)
        assert resp.status == 200, (resp.status, resp.body)
        return decode_payload(resp.text)

    def connect(self) -> str:
        """Socket.IO connect; returns the instance named in `welcome`."""
        self.post(CONNECT)
        packets = self.get()
        for _ in range(5):
            if any(p.startswith('42') for p in packets):
                break
            packets += self.get()
        welcome = next(json.loads(p[2:]) for p in packets if p.startswith('42'))
        return welcome[1]['instance']

    def whoami(self) -> str:
        self.post('421["whoami"]')
        for _ in range(5):
            for packet in self.get():
                if packet.startswith('431'):
                    return json.loads(packet[3:])[0]['instance']
        raise AssertionError('no whoami ack')


class WebSocketSession:
    """A raw Engine.IO WebSocket session (doctor.wire.WebSocket): it shows
    what a library client hides (the negotiated extension, compressed frames)
    and can stop reading on purpose."""

    def __init__(self, url: str, timeout: float = 5.0,
                 extensions: Optional[str] = None):
        resp, self.ws = websocket_upgrade(url, extensions=extensions)
        assert self.ws is not None, resp.brief()
        self.deflate = bool(resp.values('Sec-WebSocket-Extensions'))
        self.timeout = timeout
        self._acks = 0

    def connect(self) -> str:
        """Socket.IO connect; returns the instance named in `welcome`."""
        assert self.ws.recv(self.timeout).startswith('0')
        self.ws.send(CONNECT)
        for _ in range(10):
            message = self.ws.recv(self.timeout)
            if message.startswith('42'):
                return json.loads(message[2:])[1]['instance']
        raise AssertionError('no welcome')

    def emit(self, event: str, data, compress: bool = False):
        self.ws.send('42' + json.dumps([event, data]), compress=compress)

    def call(self, event: str, data) -> dict:
        """Emit with an ack id and return the ack (skipping other packets)."""
        self._acks += 1
        prefix = f'43{self._acks}'
        self.ws.send(f'42{self._acks}' + json.dumps([event, data]))
        for _ in range(100):
            message = self.ws.recv(self.timeout)
            if message.startswith(prefix + '['):
                return json.loads(message[len(prefix):])[0]
        raise AssertionError(f'no ack for {event}')

    def messages(self, count: int) -> List[Tuple[bool, dict]]:
        """The next `count` `message` events: (came compressed, payload).
        Pings are answered, other packets skipped."""
        out = []
        for _ in range(count * 4 + 10):
            if len(out) == count:
                break
            compressed, text = self.ws.message(self.timeout)
            if text == '2':
                self.ws.send('3')
            elif text.startswith('42["message"'):
                out.append((compressed, json.loads(text[2:])[1]))
        return out

    def close(self):
        self.ws.close()


# -- Socket.IO clients -----------------------------------------------------------
class Client:
    """A python-socketio client that records what the demo contract sends."""

    def __init__(self, url: str, origin: str = ALLOWED_ORIGIN,
                 transports=('websocket',), reconnection=False,
                 path: str = PATH):
        # The WebSocket client would add its own Origin header next to ours,
        # the server would refuse the pair, and python-socketio would silently
        # stay on long-polling. Suppress it so our Origin is the only one.
        self.sio = socketio.Client(
            reconnection=reconnection, reconnection_delay=0.2,
            reconnection_delay_max=1, randomization_factor=0.2,
            websocket_extra_options={'suppress_origin': True})
        self.welcomes: queue.Queue = queue.Queue()
        self.messages: queue.Queue = queue.Queue()
        self.welcome: Optional[dict] = None
        self.sio.on('welcome', self._on_welcome)
        self.offsets: List[str] = []
        self.sio.on('message', self._on_message)
        self.url, self.origin, self.path = url, origin, path
        self.transports = list(transports)

    def _on_message(self, data, offset=None):
        # Broadcasts carry their stream offset last (connection-state
        # recovery, README "The demo contract").
        if offset is not None:
            self.offsets.append(offset)
        self.messages.put(data)

    def _on_welcome(self, data):
        self.welcome = data
        self.welcomes.put({**data, 'received_at': time.monotonic()})

    def connect(self, timeout: float = 10.0) -> 'Client':
        self.sio.connect(self.url, headers={'Origin': self.origin},
                         transports=self.transports, socketio_path=self.path,
                         wait_timeout=timeout, auth=AUTH)
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
def clients(url: str, count: int, everywhere=(), **kwargs) -> Iterator[List[Client]]:
    """count connected clients; with everywhere (instance names), more until
    each of those instances holds one. A balancer that picks at random, as a
    DNS-routed nginx does (Swarm, Kubernetes), may leave an instance out of a
    few clients where least_conn never does. Bounded: 10 x count."""
    opened: List[Client] = []
    try:
        while len(opened) < count or not set(everywhere) <= {c.instance for c in opened}:
            assert len(opened) < 10 * count, \
                f'{len(opened)} clients, none on {set(everywhere) - {c.instance for c in opened}}'
            opened.append(Client(url, **kwargs).connect())
        yield opened
    finally:
        for client in opened:
            client.close()


def new_room() -> str:
    return f'room-{uuid.uuid4().hex[:6]}'


def broadcast_round(members: List[Client], room: str, count: int = 5,
                    timeout: float = 10):
    """The first member broadcasts count messages to room; every member gets
    each exactly once, in order, from the sender's instance."""
    for member in members:
        assert member.call('join', {'room': room})['ok']
    sender = members[0]
    sent = [f'{room}-{i}' for i in range(count)]
    for data in sent:
        assert sender.call('broadcast', {'room': room, 'data': data})['ok']
    for member in members:
        got = member.drain(count, timeout=timeout)
        assert [m['data'] for m in got] == sent, (member.instance, got)
        assert {m['from'] for m in got} == {sender.instance}
        assert member.drain(1, timeout=0.3) == [], 'duplicate delivery'


def spread(names: List[str]) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return counts


def ratio(counts: Dict[str, int], instances: List[str]) -> float:
    """Most loaded instance / least loaded (an idle one counts as 1)."""
    values = [counts.get(name, 0) for name in instances]
    return max(values) / max(min(values), 1)


def require_docker():
    """Go on only where a Docker engine answers (the compose projects tests
    start); without one, skip, or fail where REQUIRE_COMPOSE=1 forbids it."""
    try:
        answers = subprocess.run(['docker', 'info'], capture_output=True, timeout=20,
                                 check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        answers = False
    if not answers:
        if os.environ.get('REQUIRE_COMPOSE') == '1':
            pytest.fail('no Docker engine answers, and REQUIRE_COMPOSE=1 forbids skipping')
        pytest.skip('no Docker engine answers')


def needs_socketio_client():
    """Go on only where node and the real socket.io-client (page/node_modules)
    are here; skip otherwise."""
    if shutil.which('node') is None or not (
            ROOT / 'page' / 'node_modules' / 'socket.io-client').is_dir():
        pytest.skip('needs node and page/node_modules (make page-deps)')


def _host_routes() -> list:
    """The IPv4 networks the host routes to (the default route aside)."""
    routes = []
    with open('/proc/net/route') as table:
        for line in list(table)[1:]:
            fields = line.split()
            destination, mask = (ipaddress.IPv4Address(int.from_bytes(bytes.fromhex(f), 'little'))
                                 for f in (fields[1], fields[7]))
            if int(mask):
                routes.append(ipaddress.ip_network(f'{destination}/{mask}', strict=False))
    return routes


def free_subnet() -> str:
    """A /24 for the edge network of a compose project a test starts next to
    the developer's, used by no Docker network and no route of the host. In
    172.16.0.0/16, outside Docker's default address pools (172.17-31.0.0/16,
    192.168.0.0/16): compose creates the project's other networks (back,
    page) first, each from the next default pool, and one of them must never
    take the /24 chosen here (the daemon then refuses the edge network: "Pool
    overlaps")."""
    names = subprocess.run(['docker', 'network', 'ls', '-q'], capture_output=True, text=True,
                           check=True, timeout=30).stdout.split()
    used = _host_routes()
    if names:
        out = subprocess.run(['docker', 'network', 'inspect', *names], capture_output=True,
                             text=True, check=True, timeout=30).stdout
        used += [ipaddress.ip_network(c['Subnet']) for n in json.loads(out)
                 for c in (n.get('IPAM') or {}).get('Config') or [] if c.get('Subnet')]
    for third in range(100, 200):
        candidate = ipaddress.ip_network(f'172.16.{third}.0/24')
        if not any(candidate.overlaps(u) for u in used if u.version == 4):
            return str(candidate)
    pytest.fail('no free 172.16.x.0/24 for the edge network')


def teamchat_idioms(url_a: str, url_b: str) -> dict:
    """Run tests/node/idioms.mjs (the real socket.io-client) against
    examples/teamchat: client A on url_a, B on url_b. What it saw, checked
    for what holds wherever A and B landed; callers check the instances."""
    out = subprocess.run(['node', str(ROOT / 'tests' / 'node' / 'idioms.mjs'), url_a, url_b,
                          ALLOWED_ORIGIN], capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.stdout, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert 'error' not in seen, (seen, out.stderr)
    a, b = seen['helloA']['instance'], seen['helloB']['instance']
    assert seen['helloA']['recovered'] is False
    assert seen['joinA'] == ['joined', 'r1'] and seen['joinB'] == ['joined', 'r1']
    assert seen['sayAck'] == [True, a]
    # Four arguments through the stream: so, like Node's socket.io with
    # recovery on, with the stream offset last.
    assert seen['said'][:4] == ['r1', 'ada', 'hi', {'n': 1}]
    assert len(seen['said']) == 5 and '-' in seen['said'][4]
    assert seen['uploadAck'][0] == 4 and len(seen['uploadAck'][1]) == 64
    assert seen['file'] == ['f.bin', [0, 1, 2, 255]]                  # binary
    assert seen['whisper'] == {'from': seen['helloA']['sid'], 'text': 'psst'}
    assert seen['whoamiB'] == ['bob', b, False]        # save_session in connect
    assert seen['add'] == [5, seen['ready']]           # a class-based namespace
    assert seen['closing'] == 'r1'
    return seen
