"""The native cluster (`make local`, or a private one a test started)."""
import signal
from typing import TYPE_CHECKING, Dict, List, Optional

from control.base import Controller
from control.proctree import tree_cpu_seconds, tree_rss

if TYPE_CHECKING:  # the kit's own modules: absent from the sio-loadtest wheel
    from native.cluster import LocalCluster


class NativeController(Controller):
    """Signals the processes of a LocalCluster, found by their PID records."""
    kind = 'native'

    def __init__(self, local: 'LocalCluster', worker_class: Optional[str] = None):
        self.local = local
        self.processes = local.processes
        self.url = local.url
        self.worker_class = worker_class or local.env.get('WORKER_CLASS')

    def instances(self) -> List[str]:
        return list(self.local.app_ports)

    def kill(self, name: str):
        # The whole process group, the way `docker kill` ends every process
        # of a container: killing only a gunicorn master would leave its
        # worker serving the clients.
        self.processes.send_signal(name, signal.SIGKILL)

    def stop(self, name: str):
        self.processes.send_signal(name, signal.SIGTERM)

    def start(self, name: str):
        if name == 'redis':
            self.local.start_redis()
        elif not self.processes.is_running(name):
            self.local.start_instance(name)

    def log(self, name: str) -> str:
        return self.processes.log_path(name).read_text(errors='replace')

    def rss(self, name: str) -> Optional[int]:
        if not self.processes.is_running(name):
            return None
        return tree_rss(self.processes.pid(name))

    def cpu_seconds(self) -> Dict[str, float]:
        out = {}
        for name in [*self.instances(), 'nginx', 'redis']:
            if self.processes.is_running(name):
                value = tree_cpu_seconds(self.processes.pid(name))
                if value is not None:
                    out[name] = value
        return out

    def describe(self) -> dict:
        return {'kind': self.kind, 'instances': self.instances(),
                'run_dir': str(self.local.run_dir),
                'pids': {n: self.processes.pid(n) for n in self.instances()}}
