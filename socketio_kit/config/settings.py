"""All configuration of the kit, read from the environment in this one module.

`load_settings()` builds the settings of one Socket.IO instance; `load_cluster()`
those of the topology (instance count, balancer port, timeouts) that nginx and
native mode need. The security and the observability ones are parsed in
socketio_kit/config/security.py and socketio_kit/config/observability.py, from the same mapping.
Nothing else reads os.environ. A bad value raises `ConfigError` with one
sentence naming the variable and the fix.
"""
import os
import re
import socket
import sys
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

from socketio_kit.config.observability import (
    ClusterObservability,
    Observability,
    load_cluster_observability,
    load_observability,
)
from socketio_kit.config.parse import ConfigError, _bool, _choice, _get, _int
from socketio_kit.config.security import (
    Edge,
    Security,
    load_edge,
    load_security,
    redis_url_with_password,
)
from socketio_kit.config.streams import Streams, load_streams

INSTANCE_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$')
ORIGIN_RE = re.compile(
    r'^(?P<scheme>https?)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)'
    r'(?::(?P<port>[0-9]{1,5}))?$')
PATH_RE = re.compile(r'^/[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$')
WORKER_CLASSES = ('eventlet', 'gevent')
ON_OFF = ('off', 'on')
LOG_LEVELS = ('debug', 'info', 'warning', 'error')
# The kit's demo contract, served when APP is unset.
DEFAULT_APP = 'demo.app:sio'
# The one reserved prefix of the kit's own HTTP routes (health, stats, the
# demo page's cookie and token), on every instance and through nginx: every
# other path outside SOCKETIO_PATH is the application's. The tools, which
# ship without the runtime, repeat it once in control/base.py.
KIT_PREFIX = '/_kit'


@dataclass(frozen=True)
class Protocol:
    """What the instances and nginx must agree on, so both read it: the
    Socket.IO path, the ping cycle (nginx's timeouts must outlast it) and the
    largest client message (nginx's client_max_body_size)."""
    socketio_path: str
    ping_interval: int
    ping_timeout: int
    max_payload_bytes: int


@dataclass(frozen=True)
class Settings:
    """Settings of one Socket.IO instance."""
    instance_name: str
    redis_url: str
    cors_allowed_origins: Tuple[str, ...]
    cors_credentials: bool
    protocol: Protocol
    worker_class: str
    log_level: str
    bind: str
    session_cookie: str
    ws_compression: bool
    ws_compression_threshold: int
    max_client_buffer_bytes: int
    worker_connections: int
    security: Security = None  # socketio_kit/config/security.py
    observability: Observability = None  # socketio_kit/config/observability.py
    streams: Streams = None  # socketio_kit/config/streams.py
    # The application the instance serves (socketio_kit/loader.py).
    app: str = DEFAULT_APP
    app_path: Optional[str] = None

    @property
    def cors_wildcard(self) -> bool:
        return self.cors_allowed_origins == ('*',)


@dataclass(frozen=True)
class Cluster:
    """Settings of the topology: how many instances and how nginx fronts them."""
    instances: int
    http_port: int
    page_port: int
    app_base_port: int
    redis_port: int
    proxy_timeout: int
    nginx_worker_connections: int
    protocol: Protocol
    edge: Edge = None  # socketio_kit/config/security.py
    observability: ClusterObservability = None  # socketio_kit/config/observability.py

    @property
    def instance_names(self) -> Tuple[str, ...]:
        return tuple(f'app{i}' for i in range(1, self.instances + 1))


def parse_origins(raw: str, credentials: bool) -> Tuple[str, ...]:
    """Parse CORS_ALLOWED_ORIGINS: exact `scheme://host[:port]` origins."""
    origins = tuple(o.strip() for o in raw.split(',') if o.strip())
    if not origins:
        raise ConfigError('CORS_ALLOWED_ORIGINS is empty; set it to the comma-separated origins '
                          'of the pages that connect, e.g. http://localhost:8081,'
                          'https://app.example.com.')
    if '*' in origins:
        if credentials:
            raise ConfigError(
                'CORS_ALLOWED_ORIGINS=* cannot be combined with '
                'CORS_CREDENTIALS=true because browsers reject a wildcard '
                'origin on credentialed requests; list the exact origins in '
                'CORS_ALLOWED_ORIGINS or set CORS_CREDENTIALS=false.')
        if len(origins) > 1:
            raise ConfigError('CORS_ALLOWED_ORIGINS mixes * with explicit origins; set it to '
                              'either * or a list of exact origins.')
        return origins
    for origin in origins:
        match = ORIGIN_RE.match(origin)
        port = match and match.group('port')
        if not match or (port and not 0 < int(port) < 65536):
            raise ConfigError(f'CORS_ALLOWED_ORIGINS contains {origin!r}, which is not an origin; '
                              f'write each one as scheme://host[:port] with http or https and '
                              f'no path or trailing slash, e.g. https://app.example.com.')
    return origins


def parse_path(env, name='SOCKETIO_PATH', default='/socket.io') -> str:
    raw = _get(env, name, default)
    if not raw.startswith('/'):
        raise ConfigError(f'{name}={raw!r} does not start with "/"; set it to an absolute '
                          f'path such as /socket.io.')
    if raw != '/' and raw.endswith('/'):
        raise ConfigError(f'{name}={raw!r} ends with "/"; drop the trailing slash, e.g. '
                          f'/socket.io.')
    if not PATH_RE.match(raw):
        raise ConfigError(f'{name}={raw!r} is not a plain URL path; use '
                          f'letters, digits, "-", "_", "." and "/" only, e.g. '
                          f'/socket.io.')
    if raw == KIT_PREFIX or raw.startswith(KIT_PREFIX + '/'):
        raise ConfigError(f'{name}={raw!r} is under {KIT_PREFIX}/, which the kit reserves '
                          f'for its own routes; choose another path, e.g. /socket.io.')
    return raw


def _ping(env):
    interval = _int(env, 'PING_INTERVAL', 25, 1, 3600, ' seconds')
    timeout = _int(env, 'PING_TIMEOUT', 20, 1, 3600, ' seconds')
    return interval, timeout


def load_protocol(env: Mapping[str, str]) -> Protocol:
    """Read and check what the instances and nginx share."""
    interval, timeout = _ping(env)
    return Protocol(
        socketio_path=parse_path(env), ping_interval=interval, ping_timeout=timeout,
        max_payload_bytes=_int(env, 'MAX_PAYLOAD_BYTES', 100_000, 1024, 100_000_000,
                               ' bytes'))


def _page_port(env) -> int:
    """The demo page's port: nginx's page server, and the default origins."""
    return _int(env, 'PAGE_PORT', 8081, 1, 65535)


def load_settings(env: Optional[Mapping[str, str]] = None) -> Settings:
    """Read and check the settings of one instance."""
    env = os.environ if env is None else env
    name = _get(env, 'INSTANCE_NAME', socket.gethostname().split('.')[0])
    if not INSTANCE_NAME_RE.match(name):
        raise ConfigError(f'INSTANCE_NAME={name!r} is not a valid instance name; use 1-32 '
                          f'letters, digits, "-" or "_" (no dots), e.g. app1.')
    redis_url = redis_url_with_password(
        _get(env, 'REDIS_URL', 'redis://127.0.0.1:6379/0'), env)
    if not redis_url.startswith(('redis://', 'rediss://', 'unix://')):
        raise ConfigError(f'REDIS_URL={redis_url!r} is not a Redis URL; set it to '
                          f'redis://HOST:PORT/DB (or rediss:// or unix://).')
    credentials = _bool(env, 'CORS_CREDENTIALS', True)  # origins: the demo page's (TLS: https)
    page_port = _page_port(env)
    page = 'https' if _get(env, 'TLS', 'off').lower() == 'on' else 'http'
    origins = parse_origins(
        _get(env, 'CORS_ALLOWED_ORIGINS',
             f'{page}://localhost:{page_port},{page}://127.0.0.1:{page_port}'),
        credentials)
    protocol = load_protocol(env)
    bind = _get(env, 'BIND', '0.0.0.0:8000')
    host, _, port = bind.rpartition(':')
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f'BIND={bind!r} is not HOST:PORT; set it to e.g. 0.0.0.0:8000.')
    cookie = _get(env, 'SESSION_COOKIE', 'kit_session')
    if not re.match(r'^[A-Za-z0-9_-]{1,64}$', cookie):
        raise ConfigError(f'SESSION_COOKIE={cookie!r} is not a cookie name; use letters, '
                          f'digits, "-" or "_".')
    max_payload = protocol.max_payload_bytes
    max_buffer = _int(env, 'MAX_CLIENT_BUFFER_BYTES', 2 * 1024 * 1024, 65536, 1_000_000_000,
                      ' bytes')
    if max_buffer < 2 * max_payload:
        raise ConfigError(f'MAX_CLIENT_BUFFER_BYTES={max_buffer} is less than twice '
                          f'MAX_PAYLOAD_BYTES={max_payload}, so a full-size message in flight '
                          f'and the next one would disconnect their recipient; set '
                          f'MAX_CLIENT_BUFFER_BYTES to at least {2 * max_payload}.')
    return Settings(
        instance_name=name,
        redis_url=redis_url,
        cors_allowed_origins=origins,
        cors_credentials=credentials,
        protocol=protocol,
        worker_class=_choice(env, 'WORKER_CLASS', 'eventlet', WORKER_CLASSES),
        log_level=_choice(env, 'LOG_LEVEL', 'info', LOG_LEVELS),
        bind=bind,
        session_cookie=cookie,
        # Off, as in Node's socket.io: per-client deflate costs the server
        # 4-5x its broadcast throughput (BENCHMARKS.md).
        ws_compression=_choice(env, 'WS_COMPRESSION', 'off', ON_OFF) == 'on',
        # Node's default threshold: smaller frames gain nothing from deflate.
        ws_compression_threshold=_int(env, 'WS_COMPRESSION_THRESHOLD', 1024, 0, 100_000_000,
                                      ' bytes'),
        max_client_buffer_bytes=max_buffer,
        # Concurrent requests (gunicorn) and, separately, WebSocket sessions
        # (socketio_kit/transport/engine.py) per instance; gunicorn's default of 1000 would refuse
        # clients long before the kit's 10,000-client target.
        worker_connections=_int(env, 'WORKER_CONNECTIONS', 20000, 1, 1_000_000),
        security=load_security(env, max_payload),
        observability=load_observability(env, int(port)),
        streams=load_streams(env),
        app=_get(env, 'APP', DEFAULT_APP),
        app_path=_get(env, 'APP_PATH', '') or None,
    )


def load_cluster(env: Optional[Mapping[str, str]] = None) -> Cluster:
    """Read and check the settings of the whole topology."""
    env = os.environ if env is None else env
    protocol = load_protocol(env)
    interval, timeout = protocol.ping_interval, protocol.ping_timeout
    # nginx closes a proxied connection silent for proxy_read_timeout. Engine.IO only
    # guarantees traffic every PING_INTERVAL, and a long-poll can be held for
    # PING_INTERVAL + PING_TIMEOUT, so the timeout must clear that with margin.
    minimum = 2 * (interval + timeout)
    proxy_timeout = _int(env, 'PROXY_TIMEOUT', max(120, minimum), 1, 86400, ' seconds')
    if proxy_timeout < minimum:
        raise ConfigError(f'PROXY_TIMEOUT={proxy_timeout} is too short for PING_INTERVAL='
                          f'{interval} + PING_TIMEOUT={timeout}; nginx would cut idle '
                          f'connections, so set PROXY_TIMEOUT to at least {minimum}.')
    return Cluster(
        instances=_int(env, 'INSTANCES', 3, 1, 32),
        http_port=_int(env, 'HTTP_PORT', 8080, 1, 65535),
        page_port=_page_port(env),
        app_base_port=_int(env, 'APP_BASE_PORT', 8001, 1, 65000),
        redis_port=_int(env, 'REDIS_PORT', 6390, 1, 65535),
        proxy_timeout=proxy_timeout,
        nginx_worker_connections=_int(env, 'NGINX_WORKER_CONNECTIONS', 20480, 1024, 1_000_000),
        protocol=protocol,
        edge=load_edge(env),
        observability=load_cluster_observability(env),
    )


def child_env(overrides: Mapping[str, str]) -> dict:
    """This process's environment plus overrides, for a child process."""
    return {**os.environ, **overrides}


def environment_sets(name: str) -> bool:
    """Whether this process's environment gives name a value: a tool falls
    back on something of its own only where it does not (python -m
    socketio_kit.emit without REDIS_URL: the running native cluster's Redis)."""
    return _get(os.environ, name, '') != ''


def topology_defaults() -> dict:
    """The Makefile's and compose scripts' defaults (`--defaults` prints them)."""
    cluster = load_cluster({})
    return {'INSTANCES': str(cluster.instances),
            'HTTP_PORT': str(cluster.http_port),
            'PAGE_PORT': str(cluster.page_port)}


def main(argv=None) -> int:
    """`python -m socketio_kit.config`: check the environment, print one line;
    `--defaults`: print the topology defaults as NAME=value lines."""
    if (argv if argv is not None else sys.argv[1:]) == ['--defaults']:
        print('\n'.join(f'{k}={v}' for k, v in topology_defaults().items()))
        return 0
    try:
        settings, _ = load_settings(), load_cluster()
    except ConfigError as exc:
        print(f'config error: {exc}')
        return 2
    print(f'config ok: instance {settings.instance_name}, origins '
          f'{",".join(settings.cors_allowed_origins)}')
    return 0

