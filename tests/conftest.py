"""pytest wiring: `--target local|compose` picks the cluster the integration
tests run against; the same tests run on both.

- local: a native cluster (real redis-server, nginx, gunicorn workers) on free
  loopback ports, started per module, once per worker class.
- compose: the running `make up` cluster (the Makefile starts it before and
  stops it after the tests); instances are stopped and started with the Docker
  SDK.
"""
import signal
import time
from typing import List

import pytest

from tests.support import local_cluster


def pytest_addoption(parser):
    parser.addoption('--target', choices=('local', 'compose'), default='local',
                     help='cluster the integration tests run against')
    parser.addoption('--compose-url', default='http://127.0.0.1:8080',
                     help='balancer URL of the compose cluster')
    parser.addoption('--compose-project', default='socketio-kit')
    parser.addoption('--worker-classes', default='eventlet,gevent',
                     help='worker classes the local target runs (comma list)')


class LocalTarget:
    kind = 'local'

    def __init__(self, lc, worker_class):
        self.lc = lc
        self.url = lc.url
        self.worker_class = worker_class
        self.instances: List[str] = list(lc.app_ports)

    def kill(self, name):
        self.lc.signal(name, signal.SIGKILL)

    def stop(self, name):
        self.lc.signal(name, signal.SIGTERM)

    def start(self, name):
        self.lc.start_instance(name)

    def log(self, name) -> str:
        return self.lc.log_path(name).read_text(errors='replace')


class ComposeTarget:
    kind = 'compose'
    worker_class = 'eventlet'

    def __init__(self, url, project):
        import docker
        self.client = docker.from_env()
        self.url = url
        self.project = project
        services = sorted(
            {c.labels['com.docker.compose.service']
             for c in self._containers() if c.labels.get(
                 'com.docker.compose.service', '').startswith('app')},
            key=lambda s: int(s[3:]) if s[3:].isdigit() else 0)
        self.instances: List[str] = services

    def _containers(self, service=None):
        labels = [f'com.docker.compose.project={self.project}']
        if service:
            labels.append(f'com.docker.compose.service={service}')
        return self.client.containers.list(all=True,
                                           filters={'label': labels})

    def container(self, name):
        found = self._containers(name)
        assert found, f'no container for service {name}'
        return found[0]

    def kill(self, name):
        self.container(name).kill()

    def stop(self, name):
        self.container(name).stop(timeout=15)

    def start(self, name, wait=60.0):
        container = self.container(name)
        container.start()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            container.reload()
            health = container.attrs['State'].get('Health', {}).get('Status')
            if health == 'healthy':
                return
            time.sleep(0.5)
        raise AssertionError(f'{name} not healthy after {wait}s')

    def log(self, name) -> str:
        return self.container(name).logs().decode(errors='replace')


def _worker_classes(config):
    return [w for w in config.getoption('--worker-classes').split(',') if w]


def pytest_generate_tests(metafunc):
    if 'cluster' in metafunc.fixturenames:
        if metafunc.config.getoption('--target') == 'local':
            params = _worker_classes(metafunc.config)
        else:
            params = ['compose']
        metafunc.parametrize('cluster', params, indirect=True, scope='module')


@pytest.fixture(scope='module')
def cluster(request, tmp_path_factory):
    """The cluster under test (see the module docstring)."""
    if request.config.getoption('--target') == 'compose':
        yield ComposeTarget(request.config.getoption('--compose-url'),
                            request.config.getoption('--compose-project'))
        return
    worker_class = request.param
    run_dir = tmp_path_factory.mktemp(f'cluster-{worker_class}')
    with local_cluster(run_dir, 3, {'WORKER_CLASS': worker_class}) as lc:
        yield LocalTarget(lc, worker_class)


@pytest.fixture
def target_kind(request):
    return request.config.getoption('--target')


def pytest_collection_modifyitems(config, items):
    target = config.getoption('--target')
    for item in items:
        only = item.get_closest_marker('only_target')
        if only and target not in only.args:
            item.add_marker(pytest.mark.skip(
                reason=f'only runs with --target {" or ".join(only.args)}'))


def pytest_configure(config):
    config.addinivalue_line('markers', 'only_target(*targets): run only '
                            'against these targets')
