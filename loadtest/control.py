"""Killing, stopping, restarting and weighing one instance of the cluster.

Native mode signals the instance's own process (from the PID file the native
runner wrote); compose mode uses the Docker SDK on the containers of the
compose project. Both report an instance's memory: the RSS of the gunicorn
master and worker processes, or the container's memory use without page cache.
"""
import signal
import time
from pathlib import Path
from typing import Dict, List, Optional

try:  # optional: only for RSS in native mode
    import psutil
except ImportError:  # pragma: no cover
    psutil = None

ROOT = Path(__file__).resolve().parent.parent


class Controller:
    kind = 'none'

    def instances(self) -> List[str]:
        return []

    def kill(self, name: str):
        raise NotImplementedError('no way to kill an instance (--kill-via)')

    def stop(self, name: str):
        raise NotImplementedError('no way to stop an instance (--kill-via)')

    def start(self, name: str):
        raise NotImplementedError('no way to start an instance (--kill-via)')

    def rss(self, name: str) -> Optional[int]:
        return None

    def cpu_seconds(self) -> Dict[str, float]:
        """CPU time used so far by each process of the cluster we can see."""
        return {}

    def describe(self) -> dict:
        return {'kind': self.kind, 'instances': self.instances()}


def process_tree_cpu(pid: Optional[int]) -> Optional[float]:
    """User + system CPU seconds of pid and its descendants."""
    if pid is None or psutil is None:
        return None
    try:
        proc = psutil.Process(pid)
        total = 0.0
        for p in [proc, *proc.children(recursive=True)]:
            t = p.cpu_times()
            total += t.user + t.system
        return total
    except psutil.Error:
        return None


def process_tree_rss(pid: Optional[int]) -> Optional[int]:
    """RSS of pid and its descendants (gunicorn master + worker), in bytes."""
    if pid is None or psutil is None:
        return None
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs)
    except psutil.Error:
        return None


class NativeController(Controller):
    """A native cluster (native.cluster.LocalCluster)."""
    kind = 'native'

    def __init__(self, local_cluster):
        self.lc = local_cluster

    def instances(self):
        return list(self.lc.app_ports)

    def kill(self, name):
        # LocalCluster sends SIGKILL to the instance's whole process group,
        # the way `docker kill` ends every process of a container.
        self.lc.signal(name, signal.SIGKILL)

    def stop(self, name):
        self.lc.signal(name, signal.SIGTERM)

    def start(self, name):
        self.lc.start_instance(name)

    def rss(self, name):
        return process_tree_rss(self.lc.pid(name)) if self.lc.is_running(name) else None

    def cpu_seconds(self):
        out = {}
        for name in [*self.instances(), 'nginx', 'redis']:
            if self.lc.is_running(name):
                value = process_tree_cpu(self.lc.pid(name))
                if value is not None:
                    out[name] = value
        return out

    def describe(self):
        return {'kind': self.kind, 'instances': self.instances(),
                'run_dir': str(self.lc.run_dir),
                'pids': {n: self.lc.pid(n) for n in self.instances()}}


class DockerController(Controller):
    """The compose cluster, through the Docker SDK (never the docker CLI)."""
    kind = 'docker'

    def __init__(self, client, project: str, url: Optional[str] = None):
        self.client, self.project, self.url = client, project, url

    def _containers(self) -> Dict[str, object]:
        found = self.client.containers.list(
            all=True, filters={'label': f'com.docker.compose.project={self.project}'})
        out = {}
        for c in found:
            service = c.labels.get('com.docker.compose.service', '')
            if service.startswith('app') and service[3:].isdigit():
                out[service] = c
        return dict(sorted(out.items(), key=lambda kv: int(kv[0][3:])))

    def _container(self, name):
        try:
            return self._containers()[name]
        except KeyError:
            raise KeyError(f'no container for service {name} in compose project '
                           f'{self.project}') from None

    def instances(self):
        return list(self._containers())

    def kill(self, name):
        self._container(name).kill()

    def stop(self, name):
        self._container(name).stop(timeout=10)

    def start(self, name, wait: float = 60.0):
        container = self._container(name)
        container.start()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:  # healthy = the healthcheck says so
            container.reload()
            health = container.attrs.get('State', {}).get('Health', {}).get('Status')
            if health in (None, 'healthy') and container.status == 'running':
                return
            time.sleep(0.5)
        raise TimeoutError(f'{name} was not healthy {wait:.0f}s after start')

    def rss(self, name):
        try:
            return self.container_rss(self._container(name))
        except KeyError:
            return None

    @staticmethod
    def container_rss(container) -> Optional[int]:
        """Memory of a container without its page cache, in bytes."""
        try:
            stats = container.stats(stream=False)
        except Exception:
            return None
        mem = stats.get('memory_stats', {})
        usage = mem.get('usage')
        if usage is None:
            return None
        inner = mem.get('stats', {})
        # cgroup v2 reports inactive_file, v1 total_inactive_file: page cache
        # that is not the app's memory.
        return usage - inner.get('inactive_file', inner.get('total_inactive_file', 0))

    def cpu_seconds(self):
        out = {}
        for name, c in self._containers().items():
            try:
                usage = c.stats(stream=False)['cpu_stats']['cpu_usage']['total_usage']
                out[name] = usage / 1e9
            except Exception:
                pass
        return out

    def describe(self):
        return {'kind': self.kind, 'project': self.project,
                'instances': self.instances()}


class FixtureController(Controller):
    """Wraps any object with kill/stop/start(name) (the tests' `cluster`)."""

    def __init__(self, target):
        self.target = target
        self.kind = getattr(target, 'kind', 'fixture')
        # A native target: its LocalCluster also gives process CPU and RSS.
        lc = getattr(target, 'lc', None)
        self.native = NativeController(lc) if lc is not None else None

    def instances(self):
        return list(getattr(self.target, 'instances', []))

    def kill(self, name):
        self.target.kill(name)

    def stop(self, name):
        self.target.stop(name)

    def start(self, name):
        self.target.start(name)

    def cpu_seconds(self):
        return self.native.cpu_seconds() if self.native is not None else {}

    def rss(self, name):
        if hasattr(self.target, 'rss'):
            return self.target.rss(name)
        if self.native is not None:
            return self.native.rss(name)
        container = getattr(self.target, 'container', None)
        if container is not None:  # the compose target: Docker SDK stats
            return DockerController.container_rss(container(name))
        return None


def native_controller(run_dir: Optional[Path] = None) -> Optional[NativeController]:
    """The native cluster of `make local` if any of its instances runs."""
    from app.config import ConfigError, load_cluster
    from native.cluster import LocalCluster
    try:
        settings = load_cluster()
    except ConfigError:
        return None
    lc = LocalCluster.from_settings(Path(run_dir or ROOT / '.run' / 'local'),
                                    settings)
    if any(lc.is_running(n) for n in lc.app_ports):
        return NativeController(lc)
    return None


def docker_controller(project: str) -> Optional[DockerController]:
    """The compose project's app containers, if a Docker engine answers."""
    try:
        import docker
        client = docker.from_env(timeout=5)
        client.ping()
    except Exception:
        return None
    ctl = DockerController(client, project)
    try:
        return ctl if ctl.instances() else None
    except Exception:
        return None


def detect(kill_via: str, run_dir=None, project='socketio-kit') -> Controller:
    """The controller --kill-via asks for; `auto` prefers a running native
    cluster, then the compose project, then none."""
    if kill_via == 'none':
        return Controller()
    if kill_via in ('native', 'auto'):
        ctl = native_controller(run_dir)
        if ctl or kill_via == 'native':
            if ctl is None:
                raise RuntimeError('--kill-via native: no native cluster is '
                                   'running (start it with `make local`).')
            return ctl
    if kill_via in ('docker', 'auto'):
        ctl = docker_controller(project)
        if ctl or kill_via == 'docker':
            if ctl is None:
                raise RuntimeError(f'--kill-via docker: no Docker engine or no '
                                   f'containers of compose project {project} '
                                   f'(start it with `make up`).')
            return ctl
    return Controller()
