"""`make up PROFILE=observability` for real: a compose project of its own
(its own name, free ports, its own edge subnet and app image tag, so the
`socketio-kit` project a developer runs is never touched), with Prometheus
built from Debian's package. Prometheus must have every instance (and the
nginx exporter) as a healthy target, and the connected-clients gauge it
scrapes must follow real clients through nginx."""
import os
import subprocess
import time
import uuid
from urllib.parse import quote

import pytest
import requests

from native.cluster import ROOT
from native.net import free_ports
from tests.support import ALLOWED_ORIGINS, clients, free_subnet, require_docker

INSTANCES = 2


@pytest.fixture(scope='module')
def profile():
    require_docker()
    http, page, prom = free_ports(3)
    env = {**os.environ, 'COMPOSE_PROJECT_NAME': f'sio-obs-test-{uuid.uuid4().hex[:6]}',
           'INSTANCES': str(INSTANCES), 'HTTP_PORT': str(http), 'PAGE_PORT': str(page),
           'PROMETHEUS_PORT': str(prom), 'EDGE_SUBNET': free_subnet(),
           'APP_IMAGE': 'socketio-kit-app:obs-test', 'PROFILE': 'observability',
           'CORS_ALLOWED_ORIGINS': ALLOWED_ORIGINS,
           'PYTHON': str(ROOT / '.venv' / 'bin' / 'python')}
    try:
        up = subprocess.run([str(ROOT / 'compose' / 'up')], cwd=ROOT, env=env, text=True,
                            capture_output=True, timeout=900, check=False)
        print(up.stdout[-3000:])
        assert up.returncode == 0, f'{up.stdout[-3000:]}\n{up.stderr[-3000:]}'
        yield f'http://127.0.0.1:{http}', f'http://127.0.0.1:{prom}'
    finally:
        subprocess.run([str(ROOT / 'compose' / 'run-compose'), 'down', '-v', '--remove-orphans'],
                       cwd=ROOT, env=env, capture_output=True, timeout=300, check=False)


def query(prometheus: str, promql: str):
    resp = requests.get(f'{prometheus}/api/v1/query?query={quote(promql)}', timeout=5)
    resp.raise_for_status()
    return resp.json()['data']['result']


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ok, last = check()
        if ok:
            return last
        time.sleep(1)
    raise AssertionError(f'{what}: not within {timeout:.0f}s (last: {last})')


def connected(prometheus: str):
    result = query(prometheus, 'sum by (instance) (socketio_connected_clients)')
    return {r['metric']['instance']: float(r['value'][1]) for r in result}


def test_prometheus_scrapes_every_instance(profile):
    _, prometheus = profile

    def targets():
        active = requests.get(f'{prometheus}/api/v1/targets?state=active',
                              timeout=5).json()['data']['activeTargets']
        health = {(t['labels']['job'], t['labels']['instance']): t['health'] for t in active}
        want = {('socketio', f'app{i}') for i in range(1, INSTANCES + 1)} | {('nginx', 'nginx')}
        return all(health.get(k) == 'up' for k in want), health
    wait_for(targets, 60, 'every instance and nginx are healthy targets')
    assert {r['metric']['instance'] for r in query(prometheus, 'socketio_redis_up == 1')} == \
        {f'app{i}' for i in range(1, INSTANCES + 1)}
    assert query(prometheus, 'nginx_up == 1'), 'the exporter reads stub_status'


def test_connected_clients_gauge_follows_real_clients(profile):
    url, prometheus = profile
    base = wait_for(lambda: (len(connected(prometheus)) == INSTANCES, connected(prometheus)),
                    60, 'a connected-clients sample from every instance')
    with clients(url, 6) as opened:
        landed = {}
        for client in opened:
            landed[client.instance] = landed.get(client.instance, 0) + 1
        want = {name: base[name] + landed.get(name, 0) for name in base}
        wait_for(lambda: (connected(prometheus) == want, connected(prometheus)), 30,
                 f'Prometheus sees the clients where they landed ({landed})')
    wait_for(lambda: (connected(prometheus) == base, connected(prometheus)), 30,
             'the gauge falls back once they leave')
