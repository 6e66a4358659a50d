"""The compose cluster, through the Docker SDK (never the docker CLI)."""
import time
from typing import Dict, List, Optional

from control.base import Controller
from control.proctree import tree_cpu_seconds, tree_rss

PROJECT_LABEL = 'com.docker.compose.project'
SERVICE_LABEL = 'com.docker.compose.service'


def _is_instance(service: str) -> bool:
    return service.startswith('app') and service[3:].isdigit()


class ContainerStats:
    """Memory and CPU of the containers behind instances(), for controllers
    with container(name): compose's and Swarm's.

    A container of an engine on this host is measured like a native
    instance, on its process tree (control/proctree.py): instant, where the
    engine's stats call takes a second each. Elsewhere, the stats call."""

    def _stats(self, name: str):
        """(local pid, None) or (None, the engine's stats); (None, None): gone."""
        try:
            container = self.container(name)
            pid = local_pid(container)
            return (pid, None) if pid else (None, container.stats(stream=False))
        except Exception:  # noqa: BLE001 - gone, or the engine hiccuped
            return None, None

    def rss(self, name: str) -> Optional[int]:
        pid, stats = self._stats(name)
        return tree_rss(pid) if pid else stats and container_rss(stats)

    def cpu_seconds(self) -> Dict[str, float]:
        out = {}
        for name in self.instances():
            pid, stats = self._stats(name)
            value = tree_cpu_seconds(pid) if pid else \
                stats and stats['cpu_stats']['cpu_usage']['total_usage'] / 1e9
            if value is not None:
                out[name] = value
        return out


class DockerController(ContainerStats, Controller):
    """The containers of one compose project; instances are services app1..N."""
    kind = 'docker'

    def __init__(self, client, project: str, url: Optional[str] = None):
        self.client, self.project, self.url = client, project, url

    def services(self) -> Dict[str, object]:
        """Every container of the project, by service name."""
        found = self.client.containers.list(
            all=True, filters={'label': f'{PROJECT_LABEL}={self.project}'})
        return {c.labels.get(SERVICE_LABEL, ''): c for c in found}

    def container(self, service: str):
        try:
            return self.services()[service]
        except KeyError:
            raise KeyError(f'no container for service {service} in compose '
                           f'project {self.project}') from None

    def instances(self) -> List[str]:
        return sorted((s for s in self.services() if _is_instance(s)),
                      key=lambda s: int(s[3:]))

    def kill(self, name: str):
        self.container(name).kill()

    def stop(self, name: str):
        self.container(name).stop(timeout=10)

    def start(self, name: str, wait: float = 60.0):
        container = self.container(name)
        container.start()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:  # healthy = the healthcheck says so
            container.reload()
            health = container.attrs.get('State', {}).get('Health', {}).get('Status')
            if health in (None, 'healthy') and container.status == 'running':
                return
            time.sleep(0.5)
        raise TimeoutError(f'{name} was not healthy {wait:.0f}s after start')

    def log(self, name: str) -> str:
        return self.container(name).logs().decode(errors='replace')

    def describe(self) -> dict:
        return {'kind': self.kind, 'project': self.project,
                'instances': self.instances()}


def local_pid(container) -> Optional[int]:
    """The container's main process as this host sees it, when the engine
    runs here: its PID's cgroup names the container (an engine elsewhere
    reports a PID of its own host)."""
    pid = container.attrs.get('State', {}).get('Pid')
    try:
        with open(f'/proc/{int(pid)}/cgroup') as cgroup:
            return int(pid) if container.id in cgroup.read() else None
    except (OSError, TypeError, ValueError):
        return None


def container_rss(stats: dict) -> Optional[int]:
    """Memory of a container without its page cache, in bytes."""
    memory = stats.get('memory_stats', {})
    usage = memory.get('usage')
    if usage is None:
        return None
    inner = memory.get('stats', {})
    # cgroup v2 reports inactive_file, v1 total_inactive_file: page cache
    # that is not the app's memory.
    return usage - inner.get('inactive_file', inner.get('total_inactive_file', 0))
