"""What a result was measured on: machine, versions, command."""
import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ('picows', 'uvloop', 'aiohttp', 'python-socketio', 'python-engineio', 'eventlet',
            'gunicorn', 'redis', 'matplotlib', 'psutil', 'docker')


def machine() -> dict:
    info = {'hostname': platform.node(), 'cores': os.cpu_count(),
            'kernel': platform.release(), 'platform': platform.platform()}
    try:
        meminfo = Path('/proc/meminfo').read_text().split('\n')
        total = next(line for line in meminfo if line.startswith('MemTotal'))
        info['ram_gib'] = round(int(total.split()[1]) / 1024 / 1024, 1)
    except (OSError, StopIteration, ValueError):
        info['ram_gib'] = None
    try:
        cpuinfo = Path('/proc/cpuinfo').read_text().split('\n')
        info['cpu_model'] = next(line.split(':', 1)[1].strip() for line in cpuinfo
                                 if line.startswith('model name'))
    except (OSError, StopIteration):
        info['cpu_model'] = platform.processor() or None
    try:
        info['loadavg_at_start'] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return info


def _tool_version(argv) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=5)
        return (out.stdout + out.stderr).strip().split('\n')[0]
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict:
    out = {'python': platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out['kit_commit'] = _tool_version(['git', '-C', str(ROOT), 'rev-parse',
                                       '--short', 'HEAD'])
    out['nginx'] = _tool_version(['nginx', '-v']) or _tool_version(
        ['/usr/sbin/nginx', '-v'])
    out['redis_server'] = _tool_version(['redis-server', '--version'])
    return out


def command_line(argv=None) -> str:
    """The command that produced the result, as one could type it again."""
    if argv is None:
        argv = sys.argv[1:]
    return shlex.join(['python', '-m', 'loadtest', *argv])
