"""pytest wiring: `--target local|compose` picks the cluster the integration
tests run against; the same tests run on both.

- local: a native cluster (real redis-server, nginx, gunicorn workers) on free
  loopback ports, started per module, once per worker class.
- compose: the running `make up` cluster (the Makefile starts it before and
  stops it after the tests); instances are stopped and started with the Docker
  SDK.
"""
import signal
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
    """The compose cluster; instances are killed, stopped and started by the
    load test's DockerController (the Docker SDK, never the docker CLI)."""
    kind = 'compose'
    worker_class = 'eventlet'

    def __init__(self, url, project):
        import docker
        from loadtest.control import DockerController
        self.client = docker.from_env()
        self.url = url
        self.project = project
        self.docker = DockerController(self.client, project, url)
        self.instances: List[str] = self.docker.instances()

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
        self.docker.kill(name)

    def stop(self, name):
        self.docker.stop(name)

    def start(self, name):
        self.docker.start(name)

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
