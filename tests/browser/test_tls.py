"""TLS=on end to end: Chromium loads the demo page over https and connects
over https and wss through nginx, with SameSite=None; Secure cookies (the
session cookie and the session-binding cookie) and, with AUTH_MODE=jwt, a
token from the demo endpoint; plain http redirects, HSTS is sent.

The certificate comes from scripts/certs.sh (make certs); Chromium trusts
exactly its public key (--ignore-certificate-errors-spki-list), Python its CA.
"""
import base64
import hashlib
import http.client
import json
import ssl
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.browser.test_page import (
    ARTIFACTS,
    CHROMIUM,
    PAGE,
    ROOT,
    browser_available,  # noqa: F401  (autouse: skip without a browser)
    run_driver,
)
from tests.support import free_port, local_cluster

TEXT = 'hello over wss'


def spki_hash(cert_file) -> str:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def https_get(port: int, path: str, ca: str):
    conn = http.client.HTTPSConnection(
        'localhost', port, timeout=5,
        context=ssl.create_default_context(cafile=ca))
    conn.request('GET', path)
    resp = conn.getresponse()
    return resp.status, dict(resp.getheaders()), resp.read()


def test_page_over_tls_with_secure_cookies(tmp_path):
    certs = tmp_path / 'certs'
    subprocess.run(['bash', str(ROOT / 'scripts' / 'certs.sh'), str(certs)],
                   check=True, capture_output=True)
    page_port = free_port()
    env = {'TLS': 'on', 'TLS_CERT': str(certs / 'server.crt'),
           'TLS_KEY': str(certs / 'server.key'),
           'SESSION_COOKIE_SAMESITE': 'None', 'PAGE_PORT': str(page_port),
           # The page must take a token from the demo endpoint to connect.
           'AUTH_MODE': 'jwt', 'JWT_SECRET': 'tls-test-' + 's' * 40,
           'DEMO_TOKENS': 'true',
           'PAGE_ROOT': str(PAGE),
           'CORS_ALLOWED_ORIGINS': f'https://localhost:{page_port}'}
    with local_cluster(tmp_path / 'cluster', 2, env) as local:
        https_port = local.settings.edge.https_port
        # Plain http: a redirect to https, and /_kit/healthz for health checks.
        conn = http.client.HTTPConnection('127.0.0.1',
                                          local.settings.http_port, timeout=5)
        conn.request('GET', '/socket.io/?EIO=4&transport=polling',
                     headers={'Host': 'localhost'})
        resp = conn.getresponse()
        assert resp.status == 301
        assert resp.getheader('Location').startswith(
            f'https://localhost:{https_port}/socket.io/')
        status, headers, _ = https_get(https_port, '/_kit/healthz',
                                       str(certs / 'ca.crt'))
        assert status == 200
        assert headers['Strict-Transport-Security'] == 'max-age=31536000'
        server = f'https://localhost:{https_port}'
        result = run_driver({
            'allowedUrl': f'https://localhost:{page_port}/?server={server}',
            'artifacts': str(ARTIFACTS / 'tls'), 'chromium': CHROMIUM,
            'browserText': TEXT, 'selfOnly': True,
            'extraArgs': [f'--ignore-certificate-errors-spki-list='
                          f'{spki_hash(certs / "server.crt")}']})
    (ARTIFACTS / 'tls-result.json').write_text(json.dumps(result, indent=2))
    assert 'failure' not in result, result
    page = result['allowed']
    assert page['ok'], page
    assert page['transport'] == 'websocket'
    assert page['url'].startswith(f'wss://localhost:{https_port}/'), page['url']
    # The SameSite=None; Secure cookie from /_kit/session reached the handshake.
    assert page['cookieSet'] and page['session'] == page['cookieSet'], page
    assert any(m['data'] == TEXT for m in page['messages'])
