"""The topology as local processes: redis-server, N instances, nginx.

Each process is started with the same command and configuration as its
container (`python -m socketio_kit`, the rendered nginx.conf); native.processes spawns,
records and signals them. This module knows the order (redis, the instances,
nginx; the reverse to stop) and when each one is healthy.
"""
import dataclasses
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Mapping, Optional

from native import redis as kit_redis
from native.net import free_ports, http_get
from native.processes import ROOT, ProcessError, ProcessTable
from native.requirements import install as install_requirements
from nginx.render import Instance, Paths, render
from socketio_kit.config import (
    KIT_PREFIX,
    Cluster,
    Settings,
    child_env,
    load_cluster,
    load_settings,
)
from socketio_kit.emit import NATIVE_SETTINGS, native_settings_text

# The one start command of an instance (socketio_kit/__main__.py), as in
# the containers.
APP_START = [sys.executable, '-m', 'socketio_kit']
INSTANCE_START_WAIT = 30.0
INFRA_START_WAIT = 15.0

# Where `make local` keeps its PID records, logs and rendered nginx.conf.
RUN_DIR = ROOT / '.run' / 'local'
# While the cluster runs, RUN_DIR also records the ports it was started on
# and every kit setting it was started with (APP, APP_PATH, ...), so that ps,
# stop, start and rolling-restart find it and start its instances as they
# were, whatever the environment says by then. Mode 0600: settings such as
# JWT_SECRET are in it. (Its NATIVE_SETTINGS file gives the emitter what the
# instances were given.)
PORTS_RECORD = 'ports.json'
# Where the hash stamps of installed APP_PATH/requirements.txt files are kept
# (native/requirements.py), in the run directory.
REQUIREMENTS_STAMPS = 'requirements'
# Set by instance_env() for each instance, so not part of the record.
PER_INSTANCE = frozenset(('INSTANCE_NAME', 'BIND', 'METRICS_PORT', 'REDIS_URL', 'PYTHON'))
# Settings whose values a notice does not print.
SECRET_NAME = re.compile(r'SECRET|PASSWORD|TOKEN|KEY')
# nginx/render.py asks for worker_rlimit_nofile = worker_connections + this.
NGINX_SPARE_FILES = 1024


class ClusterError(ProcessError):
    """The cluster could not be started; the message says why."""


def open_files_limit() -> Optional[int]:
    """This process's hard limit of open files (None: unlimited); what
    nginx, started from here, can raise its own to."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return None if hard == resource.RLIM_INFINITY else hard


class _Reads(Mapping):
    """An environment that remembers every name looked up in it: given to
    load_settings() and load_cluster(), it collects the kit's settings."""

    def __init__(self, env: Mapping[str, str]):
        self.env, self.names = env, set()

    def __getitem__(self, name: str) -> str:
        self.names.add(name)
        return self.env[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.env)

    def __len__(self) -> int:
        return len(self.env)


@dataclass
class Proc:
    """One row of `python -m native ps`."""
    name: str
    pid: Optional[int]
    alive: bool
    health: str


@dataclass
class LocalCluster:
    """A native cluster rooted at run_dir. Ports are explicit so tests can
    give each cluster its own free loopback ports."""
    run_dir: Path
    settings: Cluster
    app_ports: Dict[str, int]
    env: Dict[str, str] = field(default_factory=dict)
    # Each instance's metrics listener (METRICS_PORT); none: no metrics.
    metrics_ports: Dict[str, int] = field(default_factory=dict)
    # Loopback address of an instance, when not 127.0.0.1: instances named
    # like pods share one port on 127.0.0.N (tests/k8s, DNS-routed nginx).
    app_hosts: Dict[str, str] = field(default_factory=dict)
    python: str = sys.executable
    nginx_bin: str = 'nginx'
    redis_bin: str = 'redis-server'
    # Every kit setting the cluster was started with (start(), or read back
    # from its record by as_recorded()), and those of them this environment
    # gives another value, which it ignores.
    started: Dict[str, str] = field(default_factory=dict)
    ignored: Dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        self.run_dir = Path(self.run_dir)
        edge = self.settings.edge
        self.processes = ProcessTable(self.run_dir, edge.log_max_bytes,
                                      edge.log_max_files)

    @classmethod
    def on_free_ports(cls, run_dir: Path, instances: int,
                      env: Dict[str, str]) -> 'LocalCluster':
        """A cluster of its own on free loopback ports (tests, benchmarks).

        HTTP_PORT, PAGE_PORT or REDIS_PORT given in env are kept; every other
        port is picked free. env also goes to the instances.
        """
        ports = iter(free_ports(5 + 2 * instances))
        env = dict(env, INSTANCES=str(instances))
        for name in ('HTTP_PORT', 'PAGE_PORT', 'REDIS_PORT', 'HTTPS_PORT', 'NGINX_STATUS_PORT'):
            env.setdefault(name, str(next(ports)))
        settings = load_cluster(env)
        names = settings.instance_names
        return cls(run_dir, settings, dict(zip(names, ports)), env=env,
                   metrics_ports=dict(zip(names, ports)))

    @classmethod
    def from_settings(cls, run_dir: Path, settings: Cluster, **kwargs):
        """The cluster that runs in run_dir, on the ports it was started on;
        if none runs there, the one settings describe."""
        names = settings.instance_names
        base = settings.observability.metrics_base_port
        ports = {name: settings.app_base_port + i for i, name in enumerate(names)}
        metrics = {name: base + i for i, name in enumerate(names)}
        return cls(run_dir, settings, ports, metrics_ports=metrics, **kwargs).as_recorded()

    def kit_settings(self) -> Dict[str, str]:
        """Every kit setting the instances and nginx of this cluster read, as
        this process would give them: its value, or '' where unset. The config
        takes '' for unset, so '' in a later instance's environment hides a
        value the caller's environment has by then."""
        given = child_env(self.env)
        cluster, instance = _Reads(given), _Reads(self.instance_env(next(iter(self.app_ports))))
        load_cluster(cluster)
        load_settings(instance)
        names = (cluster.names | instance.names) - PER_INSTANCE
        return {name: given.get(name, '') for name in sorted(names)}

    def _record(self, settings):
        """Write what a later command needs to find this cluster and start
        its instances again, and the emitter's settings
        (socketio_kit/emit.py): the URL carries the password."""
        edge, observability = self.settings.edge, self.settings.observability
        kit_redis.write_private(self.run_dir / PORTS_RECORD, json.dumps({
            'http_port': self.settings.http_port, 'page_port': self.settings.page_port,
            'redis_port': self.settings.redis_port, 'https_port': edge.https_port,
            'nginx_status_port': observability.nginx_status_port,
            'app_ports': self.app_ports, 'metrics_ports': self.metrics_ports,
            'app_hosts': self.app_hosts, 'settings': self.started}, indent=1))
        kit_redis.write_private(self.run_dir / NATIVE_SETTINGS,
                                native_settings_text(settings))

    def as_recorded(self) -> 'LocalCluster':
        """This cluster with the ports and settings its run directory recorded
        at start, if any of the processes it started still runs; else itself.
        A setting this environment gives another value keeps the recorded
        one (in ignored): one cluster never runs two applications."""
        try:
            record = json.loads((self.run_dir / PORTS_RECORD).read_text())
        except (OSError, ValueError):
            return self
        if not any(self.processes.is_running(n) for n in self.processes.recorded()):
            return self
        started = record.get('settings', {})
        given = child_env(self.env)
        ignored = {name: value for name, value in started.items()
                   if given.get(name, '').strip() not in ('', value.strip())}
        env = {**self.env, **started}
        settings = load_cluster(child_env(env)) if started else self.settings
        settings = dataclasses.replace(
            settings, instances=len(record['app_ports']), http_port=record['http_port'],
            page_port=record['page_port'], redis_port=record['redis_port'],
            edge=dataclasses.replace(settings.edge, https_port=record['https_port']),
            observability=dataclasses.replace(
                settings.observability, nginx_status_port=record['nginx_status_port']))
        return dataclasses.replace(
            self, settings=settings, app_ports=record['app_ports'],
            metrics_ports=record['metrics_ports'], app_hosts=record['app_hosts'],
            env=env, started=started, ignored=ignored)

    def ignored_notice(self) -> Optional[str]:
        """One line on the settings of this environment a running cluster
        ignores, or None."""
        if not self.ignored:
            return None
        kept = ', '.join(f'{name}={"(hidden)" if SECRET_NAME.search(name) else value or "(unset)"}'
                         for name, value in self.ignored.items())
        return (f'native: the running cluster keeps the settings it was started with '
                f'({kept}), not this environment\'s; to change them: make local-down, '
                f'then make local.')

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.settings.http_port}'

    @property
    def redis_url(self) -> str:
        return kit_redis.url(self.run_dir, self.settings.redis_port)

    def app_address(self, name: str) -> str:
        return f'{self.app_hosts.get(name, "127.0.0.1")}:{self.app_ports[name]}'

    def app_url(self, name: str) -> str:
        """An instance's own URL, past nginx."""
        return f'http://{self.app_address(name)}'

    def health_url(self, name: str) -> str:
        return f'{self.app_url(name)}{KIT_PREFIX}/healthz'

    def instance_env(self, name: str) -> Dict[str, str]:
        return child_env({
            **self.env,
            'INSTANCE_NAME': name,
            'BIND': self.app_address(name),
            'METRICS_PORT': str(self.metrics_ports.get(name, 0)),
            'REDIS_URL': self.redis_url,
            'PYTHON': self.python,
        })

    # -- starting ------------------------------------------------------------
    def _wait(self, name: str, ready: Callable[[], bool], wait: float):
        """Return once ready(); fail with the log if name exits or times out."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not self.processes.is_running(name):
                raise ClusterError(f'{name} exited during start-up:\n'
                                   f'{self.processes.log_tail(name)}')
            if ready():
                return
            time.sleep(0.1)
        raise ClusterError(f'{name} was not ready after {wait:.0f}s:\n'
                           f'{self.processes.log_tail(name)}')

    def _spawn_instance(self, name: str):
        self.processes.spawn(name, APP_START, env=self.instance_env(name))

    def _wait_instance(self, name: str, wait: float = INSTANCE_START_WAIT):
        url = self.health_url(name)
        self._wait(name, lambda: http_get(url, timeout=1)[0] == 200, wait)

    def served(self) -> Settings:
        """The first instance's settings: with the application (APP,
        APP_PATH) every instance serves."""
        return load_settings(self.instance_env(next(iter(self.app_ports))))

    def install_requirements(self, say: Callable[[str], None] = print) -> bool:
        """APP_PATH/requirements.txt into the venv, if it changed since it was
        last installed (native/requirements.py); True if pip ran."""
        return install_requirements(self.served().app_path, self.python,
                                    self.run_dir / REQUIREMENTS_STAMPS, say)

    def start_instance(self, name: str, wait: float = INSTANCE_START_WAIT):
        """Start one instance (after a stop) and wait until it is healthy;
        first the application's requirements, if they changed meanwhile."""
        self.install_requirements()
        self._spawn_instance(name)
        self._wait_instance(name, wait)

    def _start_redis(self):
        port = self.settings.redis_port
        # The stream and the recoverable sessions live here: an append-only
        # file keeps them across a restart of Redis (native/redis.py). A Redis
        # that comes back empty anyway is detected by the instances
        # (socketio_kit/cluster/streams.py, the epoch), whose clients then get new sessions.
        conf = kit_redis.write_config(self.run_dir, port)
        secret = kit_redis.password(self.run_dir)
        self.processes.spawn('redis', [self.redis_bin, str(conf)])
        self._wait('redis', lambda: kit_redis.answers(port, secret),
                   INFRA_START_WAIT)

    def start_redis(self):
        """Start Redis again after a stop (make local-start INSTANCE=redis)."""
        if not self.processes.is_running('redis'):
            self._start_redis()

    def nginx_connections(self) -> int:
        """NGINX_WORKER_CONNECTIONS, lowered until the open files nginx
        asks for fit under this process's hard limit, which nginx inherits:
        above it, setrlimit fails (an alert on every start), and
        worker_connections above the limit it gets draws a warning."""
        wanted, hard = self.settings.nginx_worker_connections, open_files_limit()
        if hard is None or wanted + NGINX_SPARE_FILES <= hard:
            return wanted
        return max(hard - NGINX_SPARE_FILES, 512)

    def render_nginx(self) -> Path:
        temp = self.run_dir / 'nginx-temp'
        temp.mkdir(parents=True, exist_ok=True)
        instances = [Instance(n, self.app_address(n)) for n in self.app_ports]
        # Started as root, nginx would run its workers as nobody, who may not
        # be able to read the page or write temp files under this checkout
        # (under /root, say): keep them as the user who runs the cluster.
        user = 'root' if os.geteuid() == 0 else None
        paths = Paths(pid_file=str(self.run_dir / 'nginx.pid'),
                      error_log=str(self.processes.log_path('nginx-error')),
                      access_log='off', temp_dir=str(temp), user=user)
        page_root = self.env.get('PAGE_ROOT')
        conf = self.run_dir / 'nginx.conf'
        cluster = dataclasses.replace(self.settings,
                                      nginx_worker_connections=self.nginx_connections())
        conf.write_text(render(
            instances, cluster, f'127.0.0.1:{self.settings.http_port}',
            paths, f'127.0.0.1:{self.settings.page_port}' if page_root else None,
            page_root, f'127.0.0.1:{self.settings.observability.nginx_status_port}'))
        return conf

    def _start_nginx(self):
        conf = self.render_nginx()
        test = subprocess.run([self.nginx_bin, '-t', '-q', '-p',
                               str(self.run_dir), '-c', str(conf)],
                              capture_output=True, text=True, check=False)
        if test.returncode != 0:
            raise ClusterError(f'nginx rejected {conf}: {test.stderr.strip()}')
        self.processes.spawn('nginx', [self.nginx_bin, '-p', str(self.run_dir),
                                       '-c', str(conf), '-g', 'daemon off;'])
        url = f'{self.url}{KIT_PREFIX}/healthz'
        self._wait('nginx', lambda: http_get(url, timeout=1)[0] == 200,
                   INFRA_START_WAIT)

    def check_binaries(self):
        for binary, package in ((self.nginx_bin, 'nginx'),
                                (self.redis_bin, 'redis-server')):
            if shutil.which(binary) is None:
                raise ClusterError(f'{binary} is not installed; run `make '
                                   f'deps` (apt-get install {package}).')

    def check_ports(self):
        """Refuse to start on a port something else already listens on; a
        health check would otherwise pass against that other server."""
        wanted = {'HTTP_PORT': self.settings.http_port,
                  'REDIS_PORT': self.settings.redis_port,
                  'NGINX_STATUS_PORT': self.settings.observability.nginx_status_port,
                  **{f'{name} (APP_BASE_PORT+{i})': port for i, (name, port)
                     in enumerate(self.app_ports.items())},
                  **{f'{name} metrics (METRICS_BASE_PORT+{i})': port for i, (name, port)
                     in enumerate(self.metrics_ports.items())}}
        if self.env.get('PAGE_ROOT'):
            wanted['PAGE_PORT'] = self.settings.page_port
        if self.settings.edge.tls:
            wanted['HTTPS_PORT'] = self.settings.edge.https_port
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

    def start(self, say: Callable[[str], None] = print):
        """Start redis, every instance and nginx; return once all are healthy.
        First, APP_PATH/requirements.txt goes into the venv if it changed
        (native/requirements.py; say() tells so)."""
        self.check_binaries()
        running = [n for n in self.start_order() if self.processes.is_running(n)]
        if running:
            raise ClusterError(f'the native cluster is already running '
                               f'({", ".join(running)}); see make local-ps, or '
                               f'stop it with make local-down.')
        self.check_ports()
        # Fail on bad config before starting anything.
        settings = [load_settings(self.instance_env(name)) for name in self.app_ports]
        # What the instances get from now on, whoever starts them again.
        self.started = self.kit_settings()
        self.env = {**self.env, **self.started}
        self.install_requirements(say)
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._record(settings[0])
            self._start_redis()
            for name in self.app_ports:  # start together, then wait for each
                self._spawn_instance(name)
            for name in self.app_ports:
                self._wait_instance(name)
            self._start_nginx()
        except BaseException:
            self.stop()
            raise

    # -- the rest -------------------------------------------------------------
    def recorded_instances(self) -> List[str]:
        """Instances with a PID record or in today's INSTANCES, in order:
        also those a larger INSTANCES started earlier."""
        names = (set(self.processes.recorded()) | set(self.app_ports)) - \
            {'nginx', 'redis'}
        return sorted(names, key=lambda n: (len(n), n))

    def start_order(self) -> List[str]:
        return ['redis', *self.recorded_instances(), 'nginx']

    def stop(self):
        """Stop everything start() started (even instances beyond today's
        INSTANCES), in reverse start order: nginx first, redis last."""
        for name in reversed(self.start_order()):
            self.processes.send_signal(name)
        for record in (PORTS_RECORD, NATIVE_SETTINGS):
            (self.run_dir / record).unlink(missing_ok=True)

    def status(self) -> List[Proc]:
        rows = []
        for name in self.start_order():
            running = self.processes.is_running(name)
            health = '-'
            if running and name in self.app_ports:
                status, body = http_get(self.health_url(name), 1)
                health = (f'redis {body.get("redis")}' if isinstance(body, dict)
                          else f'http {status}')
            elif running and name == 'nginx':
                status, _ = http_get(f'{self.url}{KIT_PREFIX}/healthz', 1)
                health = 'ok' if status == 200 else f'http {status}'
            rows.append(Proc(name, self.processes.pid(name), running, health))
        return rows
