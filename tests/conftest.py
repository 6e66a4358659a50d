"""pytest wiring: `--target local|compose|swarm` picks the cluster the integration
tests run against; the same tests run on both.

- local: a native cluster (real redis-server, nginx, gunicorn workers) on free
  loopback ports, started per module, once per worker class.
- compose: the running `make up` cluster (the Makefile starts it before and
  stops it after the tests).
- swarm: the `make swarm-up` stack (`make test-swarm` deploys a stack of its
  own on a free port before, and removes it after the tests).

Either way the tests drive it through the controllers in control/, the same
ones the load test uses.
"""
import dataclasses
from typing import List

import pytest

from control import Controller, DockerController, NativeController
from control.detect import PROJECT
from socketio_kit.config import load_cluster
from tests.support import local_cluster

# The worker class whose cluster runs every long test in full; the others
# run a smoke subset of them (see `full` below).
FULL_WORKER_CLASS = 'eventlet'


def pytest_addoption(parser):
    parser.addoption('--target', choices=('local', 'compose', 'swarm'), default='local',
                     help='cluster the integration tests run against')
    parser.addoption('--compose-url', default=None,
                     help='balancer URL of the compose cluster (default: '
                     'HTTP_PORT on 127.0.0.1, as socketio_kit.config reads it)')
    parser.addoption('--compose-project', default=PROJECT)
    parser.addoption('--swarm-url', default=None,
                     help='balancer URL of the swarm stack (default: SWARM_HTTP_PORT)')
    parser.addoption('--swarm-stack', default=None,
                     help='stack name (default: control.swarm.STACK)')
    parser.addoption('--worker-classes', default='eventlet,gevent',
                     help='worker classes the local target runs (comma list)')


@dataclasses.dataclass
class ClusterUnderTest:
    """The `cluster` fixture: its controller, plus what tests read often."""
    control: Controller
    url: str
    instances: List[str]
    worker_class: str

    @property
    def kind(self) -> str:
        return self.control.kind

    @property
    def full(self) -> bool:
        """Whether long tests run in full here, or as a smoke subset."""
        return self.worker_class == FULL_WORKER_CLASS

    # The controller's verbs, for tests that call them on the fixture.
    def kill(self, name: str):
        self.control.kill(name)

    def stop(self, name: str):
        self.control.stop(name)

    def start(self, name: str):
        self.control.start(name)

    def log(self, name: str) -> str:
        return self.control.log(name)


def compose_controller(config) -> DockerController:
    import docker
    url = config.getoption('--compose-url') or \
        f'http://127.0.0.1:{load_cluster().http_port}'
    return DockerController(docker.from_env(),
                            config.getoption('--compose-project'), url)


def swarm_controller(config):
    import docker

    from control.swarm import HTTP_PORT, STACK, SwarmController
    url = config.getoption('--swarm-url') or f'http://127.0.0.1:{HTTP_PORT}'
    return SwarmController(docker.from_env(), config.getoption('--swarm-stack') or STACK,
                           url)


def _worker_classes(config):
    return [w for w in config.getoption('--worker-classes').split(',') if w]


def pytest_generate_tests(metafunc):
    if 'cluster' in metafunc.fixturenames:
        if metafunc.config.getoption('--target') == 'local':
            params = _worker_classes(metafunc.config)
        else:
            params = [metafunc.config.getoption('--target')]
        metafunc.parametrize('cluster', params, indirect=True, scope='module')


@pytest.fixture(scope='module')
def cluster(request, tmp_path_factory):
    """The cluster under test (see the module docstring)."""
    if request.config.getoption('--target') in ('compose', 'swarm'):
        target = request.config.getoption('--target')
        control = (compose_controller if target == 'compose' else
                   swarm_controller)(request.config)
        yield ClusterUnderTest(control, control.url, control.instances(),
                               FULL_WORKER_CLASS)
        return
    worker_class = request.param
    run_dir = tmp_path_factory.mktemp(f'cluster-{worker_class}')
    with local_cluster(run_dir, 3, {'WORKER_CLASS': worker_class}) as local:
        control = NativeController(local, worker_class)
        yield ClusterUnderTest(control, local.url, control.instances(),
                               worker_class)


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
