"""The controller interface every kind of cluster implements."""
from typing import Dict, List, Optional

# Where the kit serves its own HTTP routes (/_kit/healthz, ...), on every
# instance and through nginx: socketio_kit.config.KIT_PREFIX, repeated here
# once because the tools (doctor, loadtest, control) ship without the
# runtime; tests/unit checks that the two agree.
KIT_PREFIX = '/_kit'


class Controller:
    """A cluster we can only connect to: no instance can be killed, stopped
    or started, and nothing is measured. Subclasses override what they can."""
    kind = 'none'
    url: Optional[str] = None  # the balancer, when known

    def instances(self) -> List[str]:
        """Names of the app instances, app1..appN."""
        return []

    def kill(self, name: str):
        """End the instance at once, every process of it (SIGKILL)."""
        raise NotImplementedError('no way to kill an instance (--kill-via)')

    def stop(self, name: str):
        """Stop the instance gracefully (SIGTERM) and wait until it is gone."""
        raise NotImplementedError('no way to stop an instance (--kill-via)')

    def start(self, name: str):
        """Start the instance if it is not running; return once healthy."""
        raise NotImplementedError('no way to start an instance (--kill-via)')

    def log(self, name: str) -> str:
        """Everything the instance has logged so far."""
        raise NotImplementedError('no way to read an instance log')

    def rss(self, name: str) -> Optional[int]:
        """Memory of the instance in bytes, or None if unknown."""
        return None

    def cpu_seconds(self) -> Dict[str, float]:
        """CPU time used so far by each process of the cluster we can see."""
        return {}

    def describe(self) -> dict:
        return {'kind': self.kind, 'instances': self.instances()}
