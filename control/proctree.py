"""CPU and RSS of a process tree (gunicorn's master and its worker), for
the controllers that can see the processes: native ones, and containers of
a Docker engine on this host."""
from typing import Optional

try:  # optional: the load test's measurements
    import psutil
except ImportError:  # pragma: no cover
    psutil = None


def _tree(pid: Optional[int]) -> list:
    """pid and its descendants as psutil processes (empty if unknown)."""
    if pid is None or psutil is None:
        return []
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def _tree_sum(pid: Optional[int], measure) -> Optional[float]:
    procs = _tree(pid)
    if not procs:
        return None
    try:
        return sum(measure(p) for p in procs)
    except psutil.Error:
        return None


def tree_cpu_seconds(pid: Optional[int]) -> Optional[float]:
    """User + system CPU seconds of pid and its descendants."""
    return _tree_sum(pid, lambda p: sum(p.cpu_times()[:2]))


def tree_rss(pid: Optional[int]) -> Optional[int]:
    """RSS of pid and its descendants (gunicorn master + worker), in bytes."""
    return _tree_sum(pid, lambda p: p.memory_info().rss)
