"""CPU used by the Docker machinery while a command runs, as a fraction of one core.

    python bench/cpu_by_process.py python -m loadtest broadcast --url http://127.0.0.1:8080 ...

Groups: docker-proxy (the daemon's userland proxy for published ports),
containerd-shim (healthcheck execs go through it), dockerd, containerd.
bench/NOTES.md ("Compose: what costs what") was measured with it.
"""
import json
import subprocess
import sys
import time

import psutil

GROUPS = (('docker-proxy', 'docker-proxy'), ('containerd-shim', 'containerd-shim'),
          ('dockerd', 'dockerd'), ('containerd', 'containerd'))


def _group(proc) -> str:
    cmd = ' '.join(proc.info['cmdline'] or [])
    for marker, name in GROUPS:
        if marker in cmd:
            return name
    return ''


def cpu_seconds() -> dict:
    seen = {}
    for proc in psutil.process_iter(['cmdline', 'cpu_times']):
        name = _group(proc)
        if name and proc.info['cpu_times']:
            times = proc.info['cpu_times']
            seen[name] = seen.get(name, 0.0) + times.user + times.system
    return seen


def main(argv) -> int:
    if not argv:
        print(__doc__)
        return 2
    before, start = cpu_seconds(), time.monotonic()
    status = subprocess.run(argv, stdout=subprocess.DEVNULL).returncode
    after, wall = cpu_seconds(), time.monotonic() - start
    fractions = {name: round((after.get(name, 0.0) - before.get(name, 0.0)) / wall, 3)
                 for name, _ in GROUPS}
    print(json.dumps({'wall_seconds': round(wall, 1), 'fraction_of_a_core': fractions,
                      'command_status': status}))
    return status


if __name__ == '__main__':
    raise SystemExit(main(sys.argv[1:]))
