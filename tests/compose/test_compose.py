"""What only the compose cluster has: containers, networks, `make up` again.

Containers are inspected and killed with the Docker SDK (never the docker CLI).
"""
import socket
import subprocess
import time

import pytest

from tests.conftest import compose_controller
from tests.support import ROOT, broadcast_round, clients, new_room, run_doctor

pytestmark = pytest.mark.only_target('compose')


@pytest.fixture(scope='module')
def compose(request):
    """The compose project's DockerController (every service, by name)."""
    return compose_controller(request.config)


def test_every_service_is_healthy_with_log_rotation(compose):
    services = compose.services()
    assert {'redis', 'nginx', *compose.instances()} <= set(services)
    assert len(compose.instances()) >= 3
    for name, container in services.items():
        container.reload()
        assert container.attrs['State']['Health']['Status'] == 'healthy', name
        log = container.attrs['HostConfig']['LogConfig']
        assert log['Type'] == 'json-file' and log['Config'].get('max-size'), name


def test_app_runs_as_non_root_and_gunicorn_is_pid_1(compose):
    container = compose.container(compose.instances()[0])
    assert container.attrs['Config']['User'] not in ('', 'root', '0')
    result = container.exec_run(['cat', '/proc/1/cmdline'])
    assert b'gunicorn' in result.output


def _published(container):
    return sorted(int(b['HostPort'])
                  for bindings in container.attrs['NetworkSettings']['Ports'].values()
                  if bindings for b in bindings)


def _run_id(info: bytes):
    for line in info.decode(errors='replace').splitlines():
        if line.startswith('run_id:'):
            return line.split(':', 1)[1].strip()
    return None


def test_redis_is_not_reachable_from_the_host(compose):
    redis = compose.container('redis')
    assert _published(redis) == []
    networks = redis.attrs['NetworkSettings']['Networks']
    assert all(n.endswith('_back') for n in networks), set(networks)
    # Nothing on the host's own addresses leads to it. (Root on the Docker
    # host can still route to the bridge address itself, as for any
    # container; that is not a published port.) A Redis of the host's own on
    # 6379 answers with another run_id.
    # It has a password (a compose secret): without it, nothing but NOAUTH.
    assert b'NOAUTH' in redis.exec_run(['redis-cli', 'info', 'server']).output
    ours = _run_id(redis.exec_run(['sh', '-c', 'REDISCLI_AUTH="$(cat '
                                   '/run/secrets/redis_password)" redis-cli '
                                   'info server']).output)
    assert ours
    for address in {'127.0.0.1', socket.gethostbyname(socket.gethostname())}:
        try:
            with socket.create_connection((address, 6379), timeout=2) as conn:
                conn.sendall(b'INFO server\r\n')
                time.sleep(0.2)
                assert _run_id(conn.recv(65536)) != ours, address
        except OSError:
            pass  # nothing listens there: not reachable


def test_only_the_balancer_and_the_page_publish_ports(compose):
    port = int(compose.url.rsplit(':', 1)[1])
    assert set(_published(compose.container('nginx'))) == {port}
    for name in compose.instances():
        assert _published(compose.container(name)) == []


def test_doctor_finds_no_fault_on_the_compose_cluster(compose):
    # As `make doctor` reaches it: localhost, the page's site (cookies check).
    code, _, checks = run_doctor(compose.url.replace('127.0.0.1', 'localhost'))
    assert code == 0, checks
    assert {r['status'] for r in checks.values()} == {'PASS'}, checks


def _settled(cs, timeout=10.0):
    """Wait until every client is connected and has stayed so for 0.5 s."""
    deadline = time.monotonic() + timeout
    stable_since = None
    while time.monotonic() < deadline:
        if all(c.sio.connected and '/' in c.sio.namespaces for c in cs):
            stable_since = stable_since or time.monotonic()
            if time.monotonic() - stable_since >= 0.5:
                return
        else:
            stable_since = None
        time.sleep(0.05)
    raise AssertionError('clients did not settle after the kill')


def test_killed_container_clients_reconnect_and_make_up_restores_it(compose):
    victim = compose.instances()[1]
    try:
        with clients(compose.url, 3 * len(compose.instances()),
                     reconnection=True) as cs:
            on_victim = [c for c in cs if c.instance == victim]
            assert on_victim
            killed_at = time.monotonic()
            compose.kill(victim)
            back = []
            for c in on_victim:
                welcome = c.welcomes.get(
                    timeout=max(0.1, 10 - (time.monotonic() - killed_at)))
                assert welcome['instance'] != victim
                back.append(welcome['received_at'] - killed_at)
            print(f'{len(on_victim)} clients of killed {victim} reconnected '
                  f'after {min(back):.2f}-{max(back):.2f}s')
            _settled(cs)
            broadcast_round(cs, new_room(), count=3)
        compose.container(victim).reload()
        assert compose.container(victim).status != 'running'
    finally:
        # `make up` brings the killed instance back (and keeps later tests
        # whole even when an assertion above failed).
        subprocess.run(['make', '--no-print-directory', 'up', 'MODE=compose'],
                       cwd=ROOT, check=True, timeout=600,
                       stdout=subprocess.DEVNULL)
    assert compose.container(victim).status == 'running'
    with clients(compose.url, 3 * len(compose.instances())) as fresh:
        assert victim in {c.instance for c in fresh}
