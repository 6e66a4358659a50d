"""AUTH_MODE=jwt with the real socket.io-client (Node): good, expired,
wrong-audience, missing and forged tokens; room claims; the kit's /_kit namespace.
"""
import json
import subprocess
import time
from pathlib import Path

import jwt
import pytest

from tests.support import ALLOWED_ORIGIN, local_cluster, needs_socketio_client

ROOT = Path(__file__).resolve().parents[2]
NODE_AUTH = ROOT / 'tests' / 'node' / 'auth.mjs'
SECRET = 'test-secret-' + 'x' * 40
JWT_ENV = {'AUTH_MODE': 'jwt', 'JWT_SECRET': SECRET,
           'JWT_AUDIENCE': 'kit-tests', 'JWT_ISSUER': 'https://issuer.test'}


def token(secret=SECRET, ttl=300, aud='kit-tests', rooms=('lobby',),
          roles=(), **extra):
    now = int(time.time())
    claims = {'sub': 'tester', 'aud': aud, 'iss': 'https://issuer.test',
              'iat': now, 'exp': now + ttl, 'rooms': list(rooms),
              'roles': list(roles), **extra}
    return jwt.encode(claims, secret, algorithm='HS256')


@pytest.fixture(scope='module')
def secured(tmp_path_factory):
    needs_socketio_client()
    with local_cluster(tmp_path_factory.mktemp('auth'), 2, JWT_ENV) as lc:
        yield lc


def node(lc, tok, rooms='-', namespace=''):
    out = subprocess.run(['node', str(NODE_AUTH), lc.url, ALLOWED_ORIGIN,
                          namespace or '/', tok or '-', rooms],
                         capture_output=True, text=True, timeout=30, check=False)
    assert out.stdout, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.only_target('local')
@pytest.mark.parametrize('tok, why', [
    (None, 'unauthorized: missing token'),
    (token(ttl=-60), 'unauthorized: token expired'),
    (token(aud='someone-else'), 'unauthorized: wrong audience'),
    (token(secret='forged-' + 'y' * 40), 'unauthorized: bad signature'),
    ('not.a.token', 'unauthorized: invalid token'),
    (jwt.encode({'sub': 'x'}, SECRET, algorithm='HS256'),
     'unauthorized: token lacks a required claim'),
])
def test_bad_tokens_get_a_connect_error_saying_why(secured, tok, why):
    seen = node(secured, tok)
    assert seen == {'connected': False, 'error': why}, seen


@pytest.mark.only_target('local')
def test_good_token_connects_and_rooms_come_from_its_claim(secured):
    seen = node(secured, token(rooms=['lobby', 'team-*']),
                'lobby,team-red,private')
    assert seen['connected'], seen
    assert seen['joins']['lobby']['ok'] and seen['joins']['team-red']['ok']
    assert not seen['joins']['private']['ok']
    assert 'not authorized' in seen['joins']['private']['error']


@pytest.mark.only_target('local')
def test_admin_namespace_needs_the_admin_role(secured):
    refused = node(secured, token(), namespace='/_kit')
    assert refused == {'connected': False,
                       'error': 'unauthorized: admin role required'}
    reasons = {}
    for _ in range(4):  # every instance counts its own refusals, by reason
        node(secured, token(), namespace='/_kit')
        admin = node(secured, token(roles=['admin']), namespace='/_kit')
        assert admin['connected'] and admin['stats']['ok'], admin
        reasons.update(admin['stats']['refused'])
    assert 'admin refused: admin role required' in reasons, reasons
