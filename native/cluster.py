"""The whole topology as local processes: redis-server, N instances, nginx.

Each process is started with the same command and configuration as its
container (`app/start`, the rendered nginx.conf), in its own session so that it
outlives `make local`. Its PID goes to RUN_DIR/pids/NAME.pid, which is how
`stop()` finds exactly the processes that `start()` started, and nothing else.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from app.config import Cluster, child_env, load_cluster, load_settings
from nginx.render import Instance, Paths, render

ROOT = Path(__file__).resolve().parent.parent


def free_ports(count: int) -> List[int]:
    """Distinct free loopback ports (held open together so none repeats)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(('127.0.0.1', 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class ClusterError(RuntimeError):
    """The cluster could not be started; the message says why."""


@dataclass
class Proc:
    name: str
    pid: Optional[int]
    alive: bool
    health: str


def _start_time(pid: int) -> Optional[str]:
    """The kernel's start time of pid, or None if it is gone or a zombie.

    Stored next to the pid, it tells our process from a later one that reused
    the same pid, so stop() never signals a stranger.
    """
    try:
        fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == 'Z' else fields[19]


def http_get(url: str, timeout: float = 2.0):
    """(status, parsed JSON or text) of a GET, or (None, error text)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = resp.read().decode()
            status = resp.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read().decode(errors='replace'), exc.code
    except (OSError, ValueError) as exc:
        return None, str(exc)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


@dataclass
class LocalCluster:
    """A native cluster rooted at run_dir. Ports are explicit so tests can
    give each cluster its own free loopback ports."""
    run_dir: Path
    cluster: Cluster
    app_ports: Dict[str, int]
    env: Dict[str, str] = field(default_factory=dict)
    python: str = sys.executable
    nginx_bin: str = 'nginx'
    redis_bin: str = 'redis-server'

    @classmethod
    def on_free_ports(cls, run_dir: Path, instances: int,
                      env: Dict[str, str]) -> 'LocalCluster':
        """A cluster of its own on free loopback ports (tests, benchmarks).

        HTTP_PORT, PAGE_PORT or REDIS_PORT given in env are kept; every other
        port is picked free. env also goes to the instances.
        """
        ports = iter(free_ports(3 + instances))
        settings = dict(env, INSTANCES=str(instances))
        for name in ('HTTP_PORT', 'PAGE_PORT', 'REDIS_PORT'):
            port = next(ports)
            settings.setdefault(name, str(port))
        cluster = load_cluster(settings)
        app_ports = dict(zip(cluster.instance_names, ports))
        return cls(Path(run_dir), cluster, app_ports, env=settings,
                   python=sys.executable)

    @classmethod
    def from_settings(cls, run_dir: Path, cluster: Cluster, **kwargs):
        ports = {name: cluster.app_base_port + i
                 for i, name in enumerate(cluster.instance_names)}
        return cls(Path(run_dir), cluster, ports, **kwargs)

    # -- paths -------------------------------------------------------------
    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.cluster.http_port}'

    @property
    def redis_url(self) -> str:
        return f'redis://127.0.0.1:{self.cluster.redis_port}/0'

    def _pidfile(self, name: str) -> Path:
        return self.run_dir / 'pids' / f'{name}.pid'

    def log_path(self, name: str) -> Path:
        return self.run_dir / 'logs' / f'{name}.log'

    def _record(self, name: str):
        try:
            pid, started = self._pidfile(name).read_text().split()
            return int(pid), started
        except (OSError, ValueError):
            return None, None

    def pid(self, name: str) -> Optional[int]:
        return self._record(name)[0]

    # -- process control ---------------------------------------------------
    def _spawn(self, name: str, argv: List[str], env=None) -> int:
        if self.is_running(name):
            raise ClusterError(f'{name} is already running (pid '
                               f'{self.pid(name)}); run `make local-down` '
                               f'first.')
        log = open(self.log_path(name), 'ab')
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=ROOT, env=env,
                                start_new_session=True)
        log.close()
        self._pidfile(name).write_text(f'{proc.pid} {_start_time(proc.pid)}')
        return proc.pid

    def is_running(self, name: str) -> bool:
        pid, started = self._record(name)
        return pid is not None and _start_time(pid) == started

    def signal(self, name: str, sig: int = signal.SIGTERM, wait: float = 15.0):
        """Send sig to one process we started and wait until it has gone.

        Each process leads its own process group (start_new_session), so
        SIGKILL goes to the whole group, like `docker kill`: killing only a
        gunicorn master would leave its worker serving the clients. SIGTERM
        goes to the leader alone, which stops its children gracefully; any
        child still left after that is killed with the group.
        """
        pid = self.pid(name)
        if pid is None or not self.is_running(name):
            self._pidfile(name).unlink(missing_ok=True)
            return
        if sig == signal.SIGKILL:
            self._kill_group(pid)
        else:
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and self.is_running(name):
            time.sleep(0.05)
        if self.is_running(name):
            self._kill_group(pid)
            while self.is_running(name):
                time.sleep(0.05)
        self._kill_group(pid)  # leftovers of a leader that already exited
        self._pidfile(name).unlink(missing_ok=True)

    @staticmethod
    def _kill_group(pgid: int):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def instance_env(self, name: str) -> Dict[str, str]:
        return child_env({
            **self.env,
            'INSTANCE_NAME': name,
            'BIND': f'127.0.0.1:{self.app_ports[name]}',
            'REDIS_URL': self.redis_url,
            'PYTHON': self.python,
        })

    def start_instance(self, name: str, wait: float = 30.0):
        self._spawn(name, [str(ROOT / 'app' / 'start')],
                    env=self.instance_env(name))
        self._wait_healthy(name, f'http://127.0.0.1:{self.app_ports[name]}'
                           f'/healthz', wait)

    def _wait_healthy(self, name: str, url: str, wait: float):
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not self.is_running(name):
                raise ClusterError(f'{name} exited during start-up:\n'
                                   f'{self.log_tail(name)}')
            status, _ = http_get(url, timeout=1)
            if status == 200:
                return
            time.sleep(0.1)
        raise ClusterError(f'{name} was not healthy at {url} after {wait:.0f}s:'
                           f'\n{self.log_tail(name)}')

    def log_tail(self, name: str, lines: int = 15) -> str:
        try:
            text = self.log_path(name).read_text(errors='replace')
        except OSError:
            return '(no log)'
        return '\n'.join('    ' + line for line in text.splitlines()[-lines:])

    def _start_redis(self):
        port = self.cluster.redis_port
        self._spawn('redis', [self.redis_bin, '--port', str(port),
                              '--bind', '127.0.0.1', '--save', '',
                              '--appendonly', 'no', '--dir',
                              str(self.run_dir)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not self.is_running('redis'):
                raise ClusterError(f'redis-server exited during start-up:\n'
                                   f'{self.log_tail("redis")}')
            try:
                with socket.create_connection(('127.0.0.1', port), 0.5) as s:
                    s.sendall(b'PING\r\n')
                    if s.recv(16).startswith(b'+PONG'):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise ClusterError(f'redis-server did not answer on port {port}.')

    def render_nginx(self) -> Path:
        temp = self.run_dir / 'nginx-temp'
        temp.mkdir(exist_ok=True)
        instances = [Instance(n, f'127.0.0.1:{p}')
                     for n, p in self.app_ports.items()]
        # Started as root, nginx would run its workers as nobody, who may not
        # be able to read the page or write temp files under this checkout
        # (under /root, say): keep them as the user who runs the cluster.
        user = 'root' if os.geteuid() == 0 else None
        paths = Paths(pid_file=str(self.run_dir / 'nginx.pid'),
                      error_log=str(self.log_path('nginx-error')),
                      access_log='off', temp_dir=str(temp), user=user)
        page_root = self.env.get('PAGE_ROOT')
        conf = self.run_dir / 'nginx.conf'
        conf.write_text(render(
            instances, self.cluster, f'127.0.0.1:{self.cluster.http_port}',
            paths, f'127.0.0.1:{self.cluster.page_port}' if page_root else None,
            page_root))
        return conf

    def _start_nginx(self):
        conf = self.render_nginx()
        test = subprocess.run([self.nginx_bin, '-t', '-q', '-p',
                               str(self.run_dir), '-c', str(conf)],
                              capture_output=True, text=True)
        if test.returncode != 0:
            raise ClusterError(f'nginx rejected {conf}: {test.stderr.strip()}')
        self._spawn('nginx', [self.nginx_bin, '-p', str(self.run_dir), '-c',
                              str(conf), '-g', 'daemon off;'])
        self._wait_healthy('nginx', f'{self.url}/healthz', 15)

    def check_binaries(self):
        for binary, package in ((self.nginx_bin, 'nginx'),
                                (self.redis_bin, 'redis-server')):
            if shutil.which(binary) is None:
                raise ClusterError(f'{binary} is not installed; run `make '
                                   f'deps` (apt-get install {package}).')

    def check_ports(self):
        """Refuse to start on a port something else already listens on; a
        health check would otherwise pass against that other server."""
        wanted = {'HTTP_PORT': self.cluster.http_port,
                  'REDIS_PORT': self.cluster.redis_port,
                  **{f'{name} (APP_BASE_PORT+{i})': port for i, (name, port)
                     in enumerate(self.app_ports.items())}}
        if self.env.get('PAGE_ROOT'):
            wanted['PAGE_PORT'] = self.cluster.page_port
        for label, port in wanted.items():
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(('127.0.0.1', port))
                except OSError:
                    raise ClusterError(
                        f'port {port} for {label} is already in use; stop '
                        f'what listens there (make down, make local-down) or '
                        f'choose another port.') from None

    def start(self):
        """Start redis, every instance and nginx; return once all are healthy."""
        self.check_binaries()
        running = [n for n in ['redis', *self.recorded_instances(), 'nginx']
                   if self.is_running(n)]
        if running:
            raise ClusterError(f'the native cluster is already running '
                               f'({", ".join(running)}); see make local-ps, or '
                               f'stop it with make local-down.')
        self.check_ports()
        for name in self.app_ports:  # fail on bad config before starting
            load_settings(self.instance_env(name))
        for sub in ('pids', 'logs'):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        try:
            self._start_redis()
            for name in self.app_ports:
                self._spawn(name, [str(ROOT / 'app' / 'start')],
                            env=self.instance_env(name))
            for name, port in self.app_ports.items():
                self._wait_healthy(name, f'http://127.0.0.1:{port}/healthz', 30)
            self._start_nginx()
        except BaseException:
            self.stop()
            raise

    def recorded_instances(self) -> List[str]:
        """Instances with a PID file or in today's INSTANCES, in order:
        also those a larger INSTANCES started earlier."""
        names = {p.stem for p in (self.run_dir / 'pids').glob('*.pid')}
        names = (names | set(self.app_ports)) - {'nginx', 'redis'}
        return sorted(names, key=lambda n: (len(n), n))

    def stop(self):
        """Stop everything start() started (even instances beyond today's
        INSTANCES): nginx first, redis last."""
        for name in ['nginx', *self.recorded_instances(), 'redis']:
            self.signal(name)

    def status(self) -> List[Proc]:
        rows = []
        for name in ['redis', *self.recorded_instances(), 'nginx']:
            running = self.is_running(name)
            health = '-'
            if running and name in self.app_ports:
                status, body = http_get(
                    f'http://127.0.0.1:{self.app_ports[name]}/healthz', 1)
                health = (f'redis {body.get("redis")}' if isinstance(body, dict)
                          else f'http {status}')
            elif running and name == 'nginx':
                status, _ = http_get(f'{self.url}/healthz', 1)
                health = 'ok' if status == 200 else f'http {status}'
            rows.append(Proc(name, self.pid(name), running, health))
        return rows
