"""The doctor's tls and cookies checks and --token / --ca, against the kit
with TLS=on and AUTH_MODE=jwt (and the cookie judgement without a network)."""
import subprocess
import time

import jwt
import pytest

from doctor.security import cookie_problem
from native.cluster import ROOT
from tests.support import local_cluster, run_doctor

SECRET = 'doctor-secret-' + 'z' * 40
PAGE = 'https://localhost:8443'  # a page over https on the same site


@pytest.mark.parametrize('cookie, server, page, problem', [
    ('a=1; SameSite=Lax', 'http://localhost:8080', 'http://localhost:8081',
     None),
    ('a=1; SameSite=Lax', 'https://api.example.com', 'https://app.other.org',
     'another site'),
    ('a=1; SameSite=None', 'https://api.example.com', 'https://x.org',
     'without Secure'),
    ('a=1; SameSite=None; Secure', 'http://localhost:8080',
     'http://localhost:8081', 'plain http'),
    ('a=1; SameSite=None; Secure', 'https://api.example.com',
     'https://app.other.org', None),
    ('a=1; SameSite=Strict', 'https://api.example.com',
     'https://www.example.com', None),
])
def test_cookie_judgement(cookie, server, page, problem):
    found = cookie_problem(cookie, server, page)
    assert (found is None) if problem is None else (problem in found), found


@pytest.fixture(scope='module')
def secured(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp('doctor-tls')
    certs = run_dir / 'certs'
    subprocess.run(['bash', str(ROOT / 'scripts' / 'certs.sh'), str(certs)],
                   check=True, capture_output=True)
    env = {'TLS': 'on', 'TLS_CERT': str(certs / 'server.crt'),
           'TLS_KEY': str(certs / 'server.key'), 'AUTH_MODE': 'jwt',
           'JWT_SECRET': SECRET, 'CORS_ALLOWED_ORIGINS': PAGE}
    with local_cluster(run_dir / 'cluster', 2, env) as lc:
        yield lc, f'https://localhost:{lc.settings.edge.https_port}', certs


def _token():
    now = int(time.time())
    return jwt.encode({'aud': 'socketio-kit', 'iss': 'socketio-kit',
                       'exp': now + 300}, SECRET, algorithm='HS256')


def test_doctor_passes_with_token_and_ca(secured):
    _, url, certs = secured
    code, report, results = run_doctor(url, '--token', _token(), '--ca',
                                       str(certs / 'ca.crt'), origin=PAGE)
    assert code == 0, report
    assert results['tls']['status'] == 'PASS', results['tls']
    assert results['cookies']['status'] == 'PASS', results['cookies']
    assert results['namespace']['status'] == 'PASS', results['namespace']


def test_doctor_names_a_missing_token_and_an_untrusted_certificate(secured):
    _, url, certs = secured
    _, _, results = run_doctor(url, '--ca', str(certs / 'ca.crt'), origin=PAGE)
    assert results['namespace']['fault'] == 'namespace-refused'
    _, _, results = run_doctor(url, '--token', _token(), origin=PAGE)
    assert results['tls']['fault'] == 'tls-invalid', results['tls']
