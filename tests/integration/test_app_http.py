"""The application's own HTTP through nginx, next to the kit's routes.

APP names tests/fixtures/hello_app.py: a socketio.WSGIApp around the kit's
server and a plain WSGI callable. Every path outside SOCKETIO_PATH and the
kit's reserved /_kit/ prefix reaches an instance, balanced per request (no
stickiness), with the proxy headers and per-address limits of the handshake;
the kit's routes answer under /_kit/, through nginx and on each instance.
"""
import json
import time
from pathlib import Path

import pytest

from tests.support import eio_handshake, http_request, local_cluster

ROOT = Path(__file__).resolve().parents[2]
APP_ENV = {'APP': 'hello_app:app', 'APP_PATH': str(ROOT / 'tests' / 'fixtures')}

pytestmark = pytest.mark.only_target('local')


@pytest.fixture(scope='module')
def app_cluster(tmp_path_factory):
    with local_cluster(tmp_path_factory.mktemp('hello'), 3, APP_ENV) as lc:
        yield lc


def test_the_apps_route_answers_through_nginx_spread_over_instances(app_cluster):
    lc = app_cluster
    served = []
    for _ in range(12):
        resp = http_request(lc.url, 'GET', '/hello', {'Host': 'kit.example'})
        assert resp.status == 200, resp.body
        body = json.loads(resp.body)
        assert body['hello'] == 'world' and body['instance'] in lc.app_ports
        # What nginx tells the application, as on the Socket.IO location.
        assert body['host'] == 'kit.example'
        assert body['x_real_ip'] == body['x_forwarded_for'] == '127.0.0.1'
        assert body['x_forwarded_proto'] == 'http'
        served.append(body['instance'])
    spread = {name: served.count(name) for name in sorted(set(served))}
    print(f'GET /hello served by {spread}')
    # Not sticky: requests from one address take turns over the instances.
    assert len(spread) > 1, spread
    # The application's own 404, from an instance, not nginx's.
    resp = http_request(lc.url, 'GET', '/nope')
    assert (resp.status, resp.body) == (404, b"not the application's")


def test_the_kit_routes_answer_under_their_prefix_through_nginx_and_direct(app_cluster):
    lc = app_cluster
    resp = http_request(lc.url, 'GET', '/_kit/healthz')
    assert resp.status == 200
    body = json.loads(resp.body)
    assert body['redis'] == 'ok' and body['instance'] in lc.app_ports
    for name in lc.app_ports:
        resp = http_request(lc.app_url(name), 'GET', '/_kit/healthz')
        assert (resp.status, json.loads(resp.body)) == (200, {'instance': name, 'redis': 'ok'})
        resp = http_request(lc.url, 'GET', f'/_kit/instance/{name}/healthz')
        assert json.loads(resp.body) == {'instance': name, 'redis': 'ok'}
        # The old paths are the application's now; the prefix is the kit's
        # alone, even where the kit has no such route.
        assert http_request(lc.app_url(name), 'GET', '/healthz').status == 404
        resp = http_request(lc.app_url(name), 'GET', '/_kit/hello')
        assert resp.status == 404 and json.loads(resp.body)['error'] == 'not found'
        resp = http_request(lc.app_url(name), 'GET', '/_kit/stats')
        assert resp.status == 200 and 'stream' in json.loads(resp.body)
    # stats only on an instance: through nginx the rest of the prefix is 404.
    assert http_request(lc.url, 'GET', '/_kit/stats').status == 404
    resp = http_request(lc.url, 'GET', '/_kit/session')
    assert resp.status == 200 and resp.first('Set-Cookie').startswith('kit_session=')


def test_socketio_is_still_the_kits_next_to_the_apps_routes(app_cluster):
    resp, packet = eio_handshake(app_cluster.url)
    assert resp.status == 200, resp.body
    assert packet['sid'].split('.')[0] in app_cluster.app_ports


def test_the_apps_paths_have_the_handshakes_per_address_limits(tmp_path_factory):
    env = {**APP_ENV, 'NGINX_HANDSHAKES_PER_SECOND': '5', 'NGINX_HANDSHAKE_BURST': '10'}

    def burst(path):
        """60 requests at once: (statuses, how many 200s the limit allows)."""
        started = time.monotonic()
        statuses = [http_request(lc.url, 'GET', path).status for _ in range(60)]
        # The burst, plus what 5/s refills while they are sent.
        return statuses, 11 + 5 * (time.monotonic() - started)

    with local_cluster(tmp_path_factory.mktemp('hello-tight'), 1, env) as lc:
        statuses, allowed = burst('/hello')
        assert statuses.count(200) <= allowed and 429 in statuses, statuses
        # A sid means nothing outside SOCKETIO_PATH: it does not dodge the limit.
        time.sleep(2.0)
        statuses, allowed = burst('/hello?sid=app1.' + 'x' * 20)
        assert statuses.count(200) <= allowed and 429 in statuses, statuses
