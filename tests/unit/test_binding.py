"""SESSION_BINDING at the WSGI level, with no network: what each mode lets
through, what a refusal answers and logs (socketio_kit/policy/binding.py)."""
import json
import logging

import pytest

from socketio_kit.policy.binding import SessionBinding, sid_prefix

ORIGIN = 'http://localhost:8081'
SID = 'app1.AbCdEfGhIjKlMnOp'
COOKIE = 'kit_session_eio'


class Engine:
    """Stands in for python-socketio's handle_request: a handshake answers
    200 with the CORS headers of an allowed origin and keeps the request's
    environ as the session's, as Server.environ does."""

    def __init__(self):
        self.sessions = {}
        self.served = 0

    def __call__(self, environ, start_response):
        self.served += 1
        if 'sid=' not in environ.get('QUERY_STRING', ''):
            self.sessions[SID] = dict(environ)
        start_response('200 OK', [('Content-Type', 'text/plain'),
                                  ('Access-Control-Allow-Origin', ORIGIN),
                                  ('Access-Control-Allow-Credentials', 'true')])
        return [b'ok']


class Response:
    def __init__(self):
        self.status, self.headers = None, []

    def __call__(self, status, headers, exc_info=None):
        self.status, self.headers = status, list(headers)

    def header(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]


def environ(sid=None, address='203.0.113.7', cookie=None, method='GET',
            upgrade=False):
    env = {'REQUEST_METHOD': method, 'REMOTE_ADDR': '127.0.0.1',
           'HTTP_X_REAL_IP': address, 'HTTP_ORIGIN': ORIGIN,
           'QUERY_STRING': 'EIO=4&transport=polling'
           + (f'&sid={sid}' if sid else '')}
    if cookie:
        env['HTTP_COOKIE'] = f'{COOKIE}={cookie}'
    if upgrade:
        env['HTTP_UPGRADE'] = 'websocket'
    return env


def binding(mode):
    engine = Engine()
    return SessionBinding('kit_session', '/socket.io', 'lax', False,
                          engine.sessions, mode), engine


def send(bind, engine, env):
    resp = Response()
    body = b''.join(bind(env, resp, engine))
    return resp, body


def handshake(bind, engine, address='203.0.113.7'):
    resp, _ = send(bind, engine, environ(address=address))
    cookies = resp.header('Set-Cookie')
    secret = cookies[0].split(';')[0].split('=', 1)[1] if cookies else None
    return resp, secret


def refused(resp, body):
    assert resp.status.startswith('400'), resp.status
    return json.loads(body)['message']


def test_auto_lets_the_stock_client_through_from_its_address():
    bind, engine = binding('auto')
    resp, secret = handshake(bind, engine)
    assert secret and 'HttpOnly' in resp.header('Set-Cookie')[0]
    for method in ('POST', 'GET'):  # no cookie: a cross-origin XHR without credentials
        resp, _ = send(bind, engine, environ(SID, method=method))
        assert resp.status == '200 OK'
    resp, _ = send(bind, engine, environ(SID, upgrade=True))
    assert resp.status == '200 OK'


def test_auto_refuses_the_sid_alone_from_another_address():
    bind, engine = binding('auto')
    handshake(bind, engine)
    served = engine.served
    resp, body = send(bind, engine, environ(SID, address='198.51.100.9'))
    message = refused(resp, body)
    assert 'another address' in message and 'SESSION_BINDING=auto' in message
    assert engine.served == served  # never reached the engine
    # The origin's CORS answer comes with it, so a page can read the reason.
    assert resp.header('Access-Control-Allow-Origin') == [ORIGIN]
    assert resp.header('Access-Control-Allow-Credentials') == ['true']


def test_auto_cookie_passes_from_anywhere_then_is_required():
    bind, engine = binding('auto')
    _, secret = handshake(bind, engine)
    resp, _ = send(bind, engine, environ(SID, address='198.51.100.9',
                                         cookie=secret))
    assert resp.status == '200 OK'
    # From now on the session is the cookie's: its own address is not enough.
    resp, body = send(bind, engine, environ(SID))
    assert 'though earlier requests' in refused(resp, body)
    resp, body = send(bind, engine, environ(SID, cookie='guessed'))
    assert 'is not the one' in refused(resp, body)


def test_auto_stale_cookie_before_any_proof_falls_back_to_the_address():
    """A browser without withCredentials may still send an older session's
    cookie on the WebSocket upgrade: the address decides."""
    bind, engine = binding('auto')
    handshake(bind, engine)
    resp, _ = send(bind, engine, environ(SID, cookie='older', upgrade=True))
    assert resp.status == '200 OK'
    resp, body = send(bind, engine, environ(SID, address='198.51.100.9',
                                            cookie='older'))
    assert 'another address' in refused(resp, body)


def test_cookie_mode_names_the_fix():
    bind, engine = binding('cookie')
    _, secret = handshake(bind, engine)
    resp, body = send(bind, engine, environ(SID, method='POST'))
    message = refused(resp, body)
    assert 'no kit_session_eio cookie' in message
    assert 'withCredentials: true' in message and 'SESSION_BINDING=auto' in message
    assert message.endswith('.') and message.count('. ') == 0  # one sentence
    resp, _ = send(bind, engine, environ(SID, address='198.51.100.9',
                                         cookie=secret))
    assert resp.status == '200 OK'


def test_address_mode_sets_no_cookie():
    bind, engine = binding('address')
    resp, secret = handshake(bind, engine)
    assert secret is None
    assert send(bind, engine, environ(SID))[0].status == '200 OK'
    resp, body = send(bind, engine, environ(SID, address='198.51.100.9'))
    assert 'SESSION_BINDING=address' in refused(resp, body)


def test_preflight_gets_no_cookie_and_unknown_sids_reach_the_engine():
    bind, engine = binding('auto')
    resp, _ = send(bind, engine, environ(method='OPTIONS'))
    assert not resp.header('Set-Cookie')
    resp, _ = send(bind, engine, environ('app2.unknown'))
    assert resp.status == '200 OK'  # the engine answers "Invalid session"


def test_a_refusal_is_logged_once_a_minute_per_reason_and_address(caplog):
    engine = Engine()
    now = [1000.0]
    bind = SessionBinding('kit_session', '/socket.io', 'lax', False,
                          engine.sessions, 'auto', clock=lambda: now[0])
    handshake(bind, engine)
    thief = environ(SID, address='198.51.100.9', method='POST')
    with caplog.at_level(logging.WARNING, 'socketio_kit.policy.binding'):
        for _ in range(3):
            send(bind, engine, thief)
        assert len(caplog.records) == 1, caplog.records
        send(bind, engine, environ(SID, address='198.51.100.10'))
        assert len(caplog.records) == 2
        now[0] += 61
        send(bind, engine, thief)
        assert len(caplog.records) == 3
    record = caplog.records[0]
    line = record.getMessage()
    assert SID not in line and sid_prefix(SID) in line
    assert '198.51.100.9' in line and '203.0.113.7' in line
    assert 'a polling POST' in line and 'another address' in line
    assert record.event == 'binding_refused' and record.reason == 'address'
    assert record.sid == sid_prefix(SID)


def test_sid_prefix_keeps_the_instance_and_four_characters():
    assert sid_prefix(SID) == 'app1.AbCd...'
    assert sid_prefix('AbCdEfGhIj') == 'AbCdEf...'


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError):
        SessionBinding('kit_session', '/socket.io', 'lax', False, {}, 'ip')
