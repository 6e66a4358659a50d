"""The Swarm stack (make swarm-up), through the Docker SDK (never the docker CLI).

An instance is a service `<stack>_appN` with one task. Swarm owns the tasks,
so the verbs are Swarm's:

- kill: SIGKILL the running task's container; Swarm starts a new task (its
  restart policy), with a new container and a new address on the overlay.
- stop: scale the service to 0; the task drains (SIGTERM) and is removed.
- start: scale it back to 1 and wait until a task runs and is healthy, and
  nginx reaches it by name and has forgotten the pool it resolved before.
"""
import time
from typing import Dict, List, Optional

from control.base import KIT_PREFIX, Controller
from control.docker import ContainerStats
from native.net import http_get
from nginx.routing import DNS_VALID

STACK_LABEL = 'com.docker.stack.namespace'
SERVICE_LABEL = 'com.docker.swarm.service.name'
STACK = 'socketio-kit-swarm'  # SWARM_STACK in the Makefile
HTTP_PORT = 8090  # SWARM_HTTP_PORT in the Makefile


def _is_instance(name: str) -> bool:
    return name.startswith('app') and name[3:].isdigit()


class SwarmController(ContainerStats, Controller):
    """The services of one stack; instances are services app1..N."""
    kind = 'swarm'

    def __init__(self, client, stack: str = STACK, url: Optional[str] = None):
        self.client, self.stack, self.url = client, stack, url

    def services(self) -> Dict[str, object]:
        """Every service of the stack, by its name in the stack file."""
        found = self.client.services.list(filters={'label': f'{STACK_LABEL}={self.stack}'})
        prefix = f'{self.stack}_'
        return {s.name[len(prefix):]: s for s in found if s.name.startswith(prefix)}

    def service(self, name: str):
        try:
            return self.services()[name]
        except KeyError:
            raise KeyError(f'no service {name} in stack {self.stack}') from None

    def instances(self) -> List[str]:
        return sorted((s for s in self.services() if _is_instance(s)),
                      key=lambda s: int(s[3:]))

    def containers(self, name: str, running_only: bool = True) -> list:
        """The containers of a service's tasks, oldest first."""
        found = self.client.containers.list(
            all=not running_only,
            filters={'label': f'{SERVICE_LABEL}={self.stack}_{name}'})
        return sorted(found, key=lambda c: c.attrs.get('Created', ''))

    def container(self, name: str):
        """The running container of a service's task."""
        running = self.containers(name)
        if not running:
            raise KeyError(f'{name} of stack {self.stack} has no running task')
        return running[-1]

    def kill(self, name: str):
        self.container(name).kill()

    def stop(self, name: str, wait: float = 30.0):
        self.service(name).scale(0)
        deadline = time.monotonic() + wait
        while self.containers(name) and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.containers(name):
            raise TimeoutError(f'{name} still runs {wait:.0f}s after scaling to 0')

    def start(self, name: str, wait: float = 90.0):
        service = self.service(name)
        if service.attrs['Spec']['Mode'].get('Replicated', {}).get('Replicas') != 1:
            service.scale(1)
        self.wait_healthy(name, wait)
        self.wait_routed(name, wait)

    def wait_routed(self, name: str, wait: float = 30.0):
        """Wait until nginx reaches the instance by name; then until the
        pool answer nginx cached without it has expired."""
        if not self.url:
            return
        deadline = time.monotonic() + wait
        while http_get(f'{self.url}{KIT_PREFIX}/instance/{name}/healthz', 2)[0] != 200:
            if time.monotonic() > deadline:
                raise TimeoutError(f'nginx did not reach {name} within {wait:.0f}s')
            time.sleep(0.2)
        time.sleep(DNS_VALID + 0.5)

    def wait_healthy(self, name: str, wait: float = 90.0, not_id: Optional[str] = None):
        """Wait until a task of the instance runs and its healthcheck passes
        (a container other than not_id: the new task after a kill)."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for container in self.containers(name):
                health = container.attrs.get('State', {}).get('Health', {}).get('Status')
                if container.id != not_id and health in (None, 'healthy'):
                    return container
            time.sleep(0.5)
        raise TimeoutError(f'{name} had no healthy task {wait:.0f}s after start')

    def log(self, name: str) -> str:
        return ''.join(c.logs().decode(errors='replace')
                       for c in self.containers(name, running_only=False))

    def leftovers(self) -> Dict[str, list]:
        """What of the stack exists: services, containers, networks, configs,
        secrets (all empty after `docker stack rm` has finished)."""
        label = {'label': f'{STACK_LABEL}={self.stack}'}
        return {
            'services': [s.name for s in self.client.services.list(filters=label)],
            'containers': [c.name for c in self.client.containers.list(all=True, filters=label)],
            'networks': [n.name for n in self.client.networks.list(filters=label)],
            'configs': [c.name for c in self.client.configs.list(filters=label)],
            'secrets': [s.name for s in self.client.secrets.list(filters=label)],
        }

    def describe(self) -> dict:
        return {'kind': self.kind, 'stack': self.stack, 'instances': self.instances()}
