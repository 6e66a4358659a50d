"""The cluster's promises, checked through nginx against real processes.

These run against whichever target `--target` selects (native or compose),
and against each worker class in native mode.
"""
import json
import socket
import time
import uuid

import pytest
import websocket

from tests.support import (ALLOWED_ORIGIN, DENIED_ORIGIN, Client, clients,
                           eio_handshake, http_request, spread)

PATH = '/socket.io'


# -- CORS ----------------------------------------------------------------------
def test_polling_handshake_allowed_origin_gets_exactly_one_allow_header(cluster):
    resp, open_packet = eio_handshake(cluster.url)
    assert resp.status == 200, resp.body
    assert resp.values('Access-Control-Allow-Origin') == [ALLOWED_ORIGIN]
    assert resp.values('Access-Control-Allow-Credentials') == ['true']
    assert open_packet['sid'].split('.')[0] in cluster.instances
    assert open_packet['upgrades'] == ['websocket']


def test_preflight_allows_origin_once(cluster):
    resp = http_request(cluster.url, 'OPTIONS',
                        f'{PATH}/?EIO=4&transport=polling', headers={
                            'Origin': ALLOWED_ORIGIN,
                            'Access-Control-Request-Method': 'POST',
                            'Access-Control-Request-Headers': 'content-type'})
    assert resp.status in (200, 204)
    assert resp.values('Access-Control-Allow-Origin') == [ALLOWED_ORIGIN]


def test_disallowed_origin_is_refused_without_allow_header(cluster):
    resp, open_packet = eio_handshake(cluster.url, origin=DENIED_ORIGIN)
    assert resp.status == 400
    assert open_packet is None
    assert resp.values('Access-Control-Allow-Origin') == []
    with pytest.raises(Exception):
        Client(cluster.url, origin=DENIED_ORIGIN,
               transports=('polling',)).connect(timeout=3)


def test_refused_origin_is_logged_once_per_instance_at_warning(cluster):
    origin = f'http://denied-{uuid.uuid4().hex[:8]}.example'
    for _ in range(3 * len(cluster.instances)):
        assert eio_handshake(cluster.url, origin=origin)[0].status == 400
    seen = 0
    for name in cluster.instances:
        lines = [line for line in cluster.log(name).splitlines()
                 if origin in line and 'WARNING' in line]
        assert len(lines) <= 1, lines
        if lines:
            seen += 1
            assert f'instance {name}' in lines[0]
            assert 'CORS_ALLOWED_ORIGINS=' in lines[0]
            assert ALLOWED_ORIGIN in lines[0]
    assert seen >= 1


# -- WebSocket upgrade ------------------------------------------------------------
def _raw_upgrade(url, origin=ALLOWED_ORIGIN):
    host, port = url.split('://')[1].split(':')
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall((
            f'GET {PATH}/?EIO=4&transport=websocket HTTP/1.1\r\n'
            f'Host: {host}:{port}\r\nUpgrade: websocket\r\n'
            f'Connection: Upgrade\r\nOrigin: {origin}\r\n'
            f'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
            f'Sec-WebSocket-Version: 13\r\n\r\n').encode())
        head = b''
        while b'\r\n\r\n' not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    return head.decode(errors='replace')


def test_websocket_upgrade_passes_through_nginx(cluster):
    head = _raw_upgrade(cluster.url)
    assert head.startswith('HTTP/1.1 101'), head
    assert 'upgrade: websocket' in head.lower()


def test_websocket_upgrade_with_wrong_origin_is_refused(cluster):
    head = _raw_upgrade(cluster.url, DENIED_ORIGIN)
    assert head.startswith('HTTP/1.1 400'), head


@pytest.mark.parametrize('transports', [('websocket',), ('polling', 'websocket')])
def test_python_client_really_uses_websocket(cluster, transports):
    client = Client(cluster.url, transports=transports).connect()
    try:
        deadline = time.monotonic() + 5
        while client.sio.transport() != 'websocket' and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.sio.transport() == 'websocket'
        assert client.call('whoami')['transport'] == 'websocket'
    finally:
        client.close()


# -- cross-instance broadcast -------------------------------------------------------
def _broadcast_round(cs, room, count=5, timeout=10):
    for c in cs:
        assert c.call('join', {'room': room})['ok']
    sender = cs[0]
    sent = [f'{room}-{i}' for i in range(count)]
    for data in sent:
        assert sender.call('broadcast', {'room': room, 'data': data})['ok']
    for c in cs:
        got = c.drain(count, timeout=timeout)
        assert [m['data'] for m in got] == sent, (c.instance, got)
        assert {m['from'] for m in got} == {sender.instance}
        assert c.drain(1, timeout=0.3) == [], 'duplicate delivery'


def test_broadcast_reaches_every_instance_exactly_once(cluster):
    with clients(cluster.url, 3 * len(cluster.instances)) as cs:
        assert set(c.instance for c in cs) == set(cluster.instances)
        _broadcast_round(cs, f'room-{uuid.uuid4().hex[:6]}')


def test_broadcast_reaches_polling_clients_too(cluster):
    with clients(cluster.url, 2 * len(cluster.instances),
                 transports=('polling',)) as cs:
        assert set(c.instance for c in cs) == set(cluster.instances)
        assert {c.sio.transport() for c in cs} == {'polling'}
        _broadcast_round(cs, f'room-{uuid.uuid4().hex[:6]}', count=3)


# -- stickiness ---------------------------------------------------------------------
class PollingSession:
    """A raw Engine.IO long-polling session, to watch where each request lands."""

    def __init__(self, url):
        self.url = url
        resp, packet = eio_handshake(url)
        assert packet, resp
        self.sid = packet['sid']

    def _path(self):
        return f'{PATH}/?EIO=4&transport=polling&sid={self.sid}'

    def post(self, payload: str):
        resp = http_request(self.url, 'POST', self._path(),
                            {'Origin': ALLOWED_ORIGIN,
                             'Content-Type': 'text/plain;charset=UTF-8'},
                            payload.encode())
        assert resp.status == 200, (resp.status, resp.body)

    def get(self) -> list:
        resp = http_request(self.url, 'GET', self._path(),
                            {'Origin': ALLOWED_ORIGIN})
        assert resp.status == 200, (resp.status, resp.body)
        return resp.body.decode().split('\x1e')

    def connect(self) -> str:
        """Socket.IO connect; returns the instance named in `welcome`."""
        self.post('40')
        packets = self.get()
        while not any(p.startswith('42') for p in packets):
            packets += self.get()
        welcome = next(json.loads(p[2:]) for p in packets if p.startswith('42'))
        return welcome[1]['instance']

    def whoami(self) -> str:
        self.post('421["whoami"]')
        for _ in range(5):
            for p in self.get():
                if p.startswith('431'):
                    return json.loads(p[3:])[0]['instance']
        raise AssertionError('no whoami ack')


class WebSocketSession:
    def __init__(self, url):
        ws_url = url.replace('http://', 'ws://') + \
            f'{PATH}/?EIO=4&transport=websocket'
        self.ws = websocket.create_connection(
            ws_url, timeout=5, suppress_origin=True,
            header=[f'Origin: {ALLOWED_ORIGIN}'])

    def connect(self) -> str:
        assert self.ws.recv().startswith('0')
        self.ws.send('40')
        while True:
            msg = self.ws.recv()
            if msg.startswith('42'):
                return json.loads(msg[2:])[1]['instance']

    def close(self):
        self.ws.close()


def _ratio(counts, instances):
    values = [counts.get(name, 0) for name in instances]
    return max(values) / max(min(values), 1)


def test_polling_sessions_stick_and_spread(cluster):
    sessions = [PollingSession(cluster.url) for _ in range(300)]
    landed = [s.connect() for s in sessions]
    for s, instance in zip(sessions, landed):
        assert s.sid.startswith(instance + '.')
    # More requests of every session reach the instance that created it.
    for s, instance in zip(sessions, landed):
        assert s.whoami() == instance
    counts = spread(landed)
    print(f'polling spread over {len(cluster.instances)} instances: {counts}')
    assert _ratio(counts, cluster.instances) <= 1.5, counts


def test_mixed_clients_spread(cluster):
    sockets, landed = [], []
    try:
        for i in range(300):
            if i % 2:
                session = PollingSession(cluster.url)
                landed.append(session.connect())
                assert session.whoami() == landed[-1]
            else:
                sockets.append(WebSocketSession(cluster.url))
                landed.append(sockets[-1].connect())
    finally:
        for s in sockets:
            s.close()
    counts = spread(landed)
    print(f'mixed spread over {len(cluster.instances)} instances: {counts}')
    assert _ratio(counts, cluster.instances) <= 1.5, counts


@pytest.mark.parametrize('sid', [
    'evil.example.x', '127.0.0.1:22.x', 'socketio_all', 'app1', '../app1.x',
    'localhost', 'app1%2e.x', 'APP1.x', 'app1.x\r\nHost: evil',
])
def test_client_supplied_sid_cannot_route_elsewhere(cluster, sid):
    from urllib.parse import quote
    resp = http_request(cluster.url, 'GET',
                        f'{PATH}/?EIO=4&transport=polling&sid={quote(sid)}',
                        {'Origin': ALLOWED_ORIGIN})
    # An instance answered (Engine.IO's "Session ID unknown"), not nginx with
    # a gateway error from trying some other host.
    assert resp.status == 400, (resp.status, resp.body)
    assert b'Session ID unknown' in resp.body or b'Invalid session' in resp.body


# -- failure ------------------------------------------------------------------------
def test_session_of_dead_instance_fails_fast_and_clients_move(cluster):
    victim = cluster.instances[-1]
    with clients(cluster.url, 3 * len(cluster.instances), reconnection=True) as cs:
        on_victim = [c for c in cs if c.instance == victim]
        assert on_victim
        session = None
        for _ in range(3 * len(cluster.instances)):
            candidate = PollingSession(cluster.url)
            if candidate.sid.startswith(victim + '.'):
                session = candidate
                break
        assert session, f'no polling session landed on {victim}'
        stopped_at = time.monotonic()
        cluster.stop(victim)
        try:
            # A request for a session of the dead instance fails fast.
            started = time.monotonic()
            resp = http_request(cluster.url, 'GET', session._path(),
                                {'Origin': ALLOWED_ORIGIN}, timeout=10)
            assert resp.status in (502, 503, 504)
            assert time.monotonic() - started < 5
            # Its clients reconnect elsewhere within 10 s of the stop signal.
            back = []
            for c in on_victim:
                welcome = c.welcomes.get(
                    timeout=max(0.1, 10 - (time.monotonic() - stopped_at)))
                assert welcome['instance'] != victim, welcome
                back.append(welcome['received_at'] - stopped_at)
            print(f'{len(on_victim)} clients of {victim} reconnected after '
                  f'{min(back):.2f}-{max(back):.2f}s')
            assert max(back) < 10
            # New handshakes avoid the dead instance, and broadcast works.
            for _ in range(6):
                assert eio_handshake(cluster.url)[0].status == 200
            _broadcast_round(cs, f'room-{uuid.uuid4().hex[:6]}', count=3)
        finally:
            cluster.start(victim)
        # The restored instance takes new clients again.
        with clients(cluster.url, 3 * len(cluster.instances)) as fresh:
            assert victim in {c.instance for c in fresh}


# -- bad input ----------------------------------------------------------------------
GARBAGE = ['42garbage', '42[', '42["join"', '42{"a":1}', '4', '9', '43abc',
           '42["broadcast",{"room":[]}]', '42["broadcast",{"room":"r"}',
           '4\x00\xff', '40/nope,', '2probe', 'x' * 2000]


def test_malformed_input_never_hurts_other_clients(cluster):
    with clients(cluster.url, 2 * len(cluster.instances)) as cs:
        bad = []
        for _ in range(len(cluster.instances)):
            s = WebSocketSession(cluster.url)
            s.connect()
            bad.append(s)
        for s in bad:
            for payload in GARBAGE:
                try:
                    s.ws.send(payload)
                except Exception:
                    break
            try:  # oversized frame: the server drops this client only
                s.ws.send('42["broadcast",{"room":"r","data":"' +
                          'x' * 2_000_000 + '"}]')
            except Exception:
                pass
            s.close()
        for c in cs:
            assert c.call('whoami')['instance'] == c.instance
        _broadcast_round(cs, f'room-{uuid.uuid4().hex[:6]}', count=2)
        for name in cluster.instances:
            resp = http_request(cluster.url, 'GET', f'/_instance/{name}/healthz')
            assert resp.status == 200, (name, resp.body)


def test_oversized_message_closes_only_that_client(cluster):
    with clients(cluster.url, len(cluster.instances)) as cs:
        s = WebSocketSession(cluster.url)
        s.connect()
        s.ws.settimeout(3)
        closed = False
        try:
            s.ws.send('42["broadcast",{"room":"r","data":"' +
                      'x' * 2_000_000 + '"}]')
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                opcode, _ = s.ws.recv_data(control_frame=True)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    closed = True
                    break
        except websocket.WebSocketTimeoutException:
            closed = False  # still open and silent: not dropped
        except (websocket.WebSocketException, OSError):
            closed = True
        finally:
            s.close()
        assert closed, 'the server kept a client that sent 2 MB'
        for c in cs:
            assert c.call('whoami')['instance'] == c.instance


def test_bad_event_payloads_get_error_acks(cluster):
    client = Client(cluster.url).connect()
    try:
        for event, data in [('join', None), ('join', 'r'), ('join', {'room': ''}),
                            ('join', {'room': 'x' * 500}), ('broadcast', [1]),
                            ('broadcast', {'room': 5}), ('nope', {})]:
            ack = client.call(event, data)
            assert ack['ok'] is False and ack['error'], (event, data, ack)
        assert client.call('whoami')['instance'] == client.instance
    finally:
        client.close()


def test_health_endpoints(cluster):
    resp = http_request(cluster.url, 'GET', '/healthz')
    assert resp.status == 200
    assert json.loads(resp.body)['redis'] == 'ok'
    for name in cluster.instances:
        body = json.loads(http_request(cluster.url, 'GET',
                                       f'/_instance/{name}/healthz').body)
        assert body == {'instance': name, 'redis': 'ok'}
    assert http_request(cluster.url, 'GET', '/_instance/nope/healthz').status == 404
