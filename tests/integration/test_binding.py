"""SESSION_BINDING=auto (the default) through nginx, with real clients.

- The stock socket.io-client (Node), `io(url)` on an allowed origin without
  withCredentials, long-polls, upgrades to WebSocket and gets an ack: it never
  sends the binding cookie, so its address carries the session.
- A request naming another client's sid without that client's binding (the
  sid alone, from another address; or, once the client has sent its cookie
  back, without the cookie) gets 400 saying why, and the instance logs it once.
"""
import http.client
import json
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from doctor.wire import Response, eio_query
from tests.support import ALLOWED_ORIGIN, PATH, PollingSession, needs_socketio_client

ROOT = Path(__file__).resolve().parents[2]
NODE_STOCK = ROOT / 'tests' / 'node' / 'stock.mjs'


def stock_client(url: str) -> dict:
    needs_socketio_client()
    out = subprocess.run(['node', str(NODE_STOCK), url, ALLOWED_ORIGIN],
                         capture_output=True, text=True, timeout=40, check=False)
    assert out.stdout, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_stock_client_polls_upgrades_and_acks_without_credentials(cluster):
    seen = stock_client(cluster.url)
    assert seen['withCredentials'] is False and seen['cookieJar'] is False, seen
    assert seen['ok'] and seen['errors'] == [] and seen['reconnects'] == 0, seen
    assert seen['transports'] == ['polling', 'websocket'], seen
    assert seen['ack']['transport'] == 'websocket', seen
    assert seen['ack']['instance'] in cluster.instances, seen


# -- a stolen sid -------------------------------------------------------------
def from_address(url: str, source: str, method: str, path: str,
                 headers: dict, body: bytes = None) -> Response:
    """One request to the balancer from the loopback address `source`, so
    nginx sees another client address (X-Real-IP) than 127.0.0.1."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5,
                                      source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return Response(resp.status, resp.getheaders(), resp.read())
    finally:
        conn.close()


def stolen(url: str, sid: str, source: str, cookie: str = None):
    """GET, POST and the WebSocket upgrade of `sid`, as a thief sends them."""
    headers = {'Origin': ALLOWED_ORIGIN, **({'Cookie': cookie} if cookie else {})}
    query = eio_query(PATH, transport='polling', sid=sid)
    upgrade = {**headers, 'Connection': 'Upgrade', 'Upgrade': 'websocket',
               'Sec-WebSocket-Version': '13',
               'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ=='}
    return [
        from_address(url, source, 'GET', query, headers),
        from_address(url, source, 'POST', query,
                     {**headers, 'Content-Type': 'text/plain;charset=UTF-8'},
                     b'42["whoami"]'),
        from_address(url, source, 'GET',
                     eio_query(PATH, transport='websocket', sid=sid), upgrade),
    ]


def refusal_lines(cluster, sid: str, expected: int = 1):
    """The instance's log lines about refusing `sid`, once `expected` are
    there (or after 5 s)."""
    instance, prefix = sid.split('.')[0], sid[:len(sid.split('.')[0]) + 5]
    deadline = time.monotonic() + 5
    while True:
        text = cluster.log(instance)
        lines = [row for row in text.splitlines()
                 if 'socketio_kit.policy.binding' in row and prefix in row]
        if len(lines) >= expected or time.monotonic() > deadline:
            assert sid not in text, 'a refusal logged the whole sid'
            return lines
        time.sleep(0.2)


def stock_session(url: str) -> PollingSession:
    """A polling session that sends no cookie back, as io(url) without
    withCredentials on another origin."""
    session = PollingSession(url)
    assert session.cookie, 'the handshake set no binding cookie'
    session.cookie = None
    return session


@pytest.mark.only_target('local')
def test_the_sid_alone_from_another_address_is_refused_and_logged_once(cluster):
    victim = stock_session(cluster.url)
    assert victim.connect() in cluster.instances
    for resp in stolen(cluster.url, victim.sid, '127.0.0.2'):
        assert resp.status == 400, (resp.status, resp.body)
        message = json.loads(resp.body)['message']
        assert 'another address' in message and 'SESSION_BINDING=auto' in message
        # CORS as for the origin's handshake: a page can read why.
        assert resp.values('Access-Control-Allow-Origin') == [ALLOWED_ORIGIN]
    # The victim's session carries on, from its own address, without a cookie.
    assert victim.whoami() in cluster.instances
    lines = refusal_lines(cluster, victim.sid)
    assert len(lines) == 1, lines
    assert 'from 127.0.0.2' in lines[0] and 'another address' in lines[0]


@pytest.mark.only_target('local')
def test_a_session_that_sent_its_cookie_needs_it_from_then_on(cluster):
    """A client that keeps cookies binds its session to the cookie: the sid
    from the client's own address (a shared NAT) is no longer enough, and
    neither is a guessed cookie."""
    victim = PollingSession(cluster.url)   # sends the cookie back
    assert victim.connect() in cluster.instances
    for cookie in (None, 'kit_session_eio=guessed'):
        for resp in stolen(cluster.url, victim.sid, '127.0.0.1', cookie):
            assert resp.status == 400, (resp.status, resp.body)
            assert 'SESSION_BINDING=auto' in json.loads(resp.body)['message']
    # From another address with the cookie, the client still passes.
    resp = from_address(cluster.url, '127.0.0.3', 'POST', victim.query,
                        {**victim.headers,
                         'Content-Type': 'text/plain;charset=UTF-8'},
                        b'42["whoami"]')
    assert resp.status == 200, (resp.status, resp.body)
    lines = refusal_lines(cluster, victim.sid, expected=2)
    # Once per reason from this address: no cookie, then a wrong one.
    assert len(lines) == 2, lines
    assert 'though earlier requests' in lines[0] and 'is not the one' in lines[1]
