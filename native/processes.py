"""Process bookkeeping for the native cluster: spawn, record, signal.

Each process is started in its own session (so it outlives `make local` and
leads its own process group), with its output in RUN_DIR/logs/NAME.log. Its
PID and kernel start time go to RUN_DIR/pids/NAME.pid: together they tell our
process from a later one that reused the PID, so nothing here ever signals a
stranger.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent


class ProcessError(RuntimeError):
    """A process could not be started; the message says why."""


def start_time(pid: int) -> Optional[str]:
    """The kernel's start time of pid, or None if it is gone or a zombie."""
    try:
        fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == 'Z' else fields[19]


def stop_child(proc: subprocess.Popen, wait: float = 10.0):
    """Stop a child this process started: SIGTERM, then SIGKILL if it has
    not exited within `wait` seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def kill_group(pgid: int):
    """SIGKILL every process of a group; nothing if it is already gone."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class ProcessTable:
    """The processes started under one run directory, by name."""

    def __init__(self, run_dir: Path, log_max_bytes: int = 10 * 1024 ** 2,
                 log_max_files: int = 3):
        self.run_dir = Path(run_dir)
        # Rotation of each process's log (native/logpipe.py).
        self.log_max_bytes, self.log_max_files = log_max_bytes, log_max_files

    def _pidfile(self, name: str) -> Path:
        return self.run_dir / 'pids' / f'{name}.pid'

    def log_path(self, name: str) -> Path:
        return self.run_dir / 'logs' / f'{name}.log'

    def log_tail(self, name: str, lines: int = 15) -> str:
        try:
            text = self.log_path(name).read_text(errors='replace')
        except OSError:
            return '(no log)'
        return '\n'.join('    ' + line for line in text.splitlines()[-lines:])

    def _record(self, name: str) -> Tuple[Optional[int], Optional[str]]:
        try:
            pid, started = self._pidfile(name).read_text().split()
            return int(pid), started
        except (OSError, ValueError):
            return None, None

    def pid(self, name: str) -> Optional[int]:
        return self._record(name)[0]

    def is_running(self, name: str) -> bool:
        pid, started = self._record(name)
        return pid is not None and start_time(pid) == started

    def recorded(self) -> List[str]:
        """Every name with a PID record."""
        return sorted(p.stem for p in (self.run_dir / 'pids').glob('*.pid'))

    def spawn(self, name: str, argv: List[str],
              env: Optional[Dict[str, str]] = None) -> int:
        """Start argv as name, in its own session; record and return its PID."""
        if self.is_running(name):
            raise ProcessError(f'{name} is already running (pid {self.pid(name)});'
                               f' run `make local-down` first.')
        for sub in ('pids', 'logs'):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        # The output goes through a pipe to the log rotator, which exits by
        # itself once the process (and its children) have closed the pipe.
        # Neither keeps this process's stdout or stderr: they outlive it, and
        # a caller reading them (`make local 2>&1 | tail`) would wait for
        # them forever. The rotator's own errors go to the log it writes.
        with open(self.log_path(name), 'ab') as errors:
            pipe = subprocess.Popen(
                [sys.executable, '-m', 'native.logpipe', str(self.log_path(name)),
                 str(self.log_max_bytes), str(self.log_max_files)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors,
                cwd=ROOT, start_new_session=True)
        try:
            proc = subprocess.Popen(argv, stdout=pipe.stdin,
                                    stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=ROOT, env=env,
                                    start_new_session=True)
        finally:
            pipe.stdin.close()
        self._pidfile(name).write_text(f'{proc.pid} {start_time(proc.pid)}')
        return proc.pid

    def send_signal(self, name: str, sig: int = signal.SIGTERM,
                    wait: float = 15.0):
        """Send sig to one process we started and wait until it has gone.

        SIGKILL goes to the whole process group, like `docker kill`. SIGTERM
        goes to the leader alone, which stops its children gracefully; any
        child still left after that is killed with the group.
        """
        pid = self.pid(name)
        if pid is None or not self.is_running(name):
            self._pidfile(name).unlink(missing_ok=True)
            return
        if sig == signal.SIGKILL:
            kill_group(pid)
        else:
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and self.is_running(name):
            time.sleep(0.05)
        if self.is_running(name):
            kill_group(pid)
            for _ in range(200):  # bounded: SIGKILL takes effect at once
                if not self.is_running(name):
                    break
                time.sleep(0.05)
        kill_group(pid)  # leftovers of a leader that already exited
        self._pidfile(name).unlink(missing_ok=True)
