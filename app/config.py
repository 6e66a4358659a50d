"""All configuration of the kit, read from the environment in this one module.

`load_settings()` builds the settings of one Socket.IO instance; `load_cluster()`
builds the settings of the whole topology (instance count, balancer port and
timeouts) that the nginx renderer and the native runner need. Nothing else in
the project reads `os.environ`. A bad value raises `ConfigError` with one
sentence that names the variable and the fix.
"""
import os
import re
import socket
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple


class ConfigError(ValueError):
    """A configuration value that must stop start-up."""


# Instance names end up in Engine.IO session ids ("<name>.<random>") and in
# nginx upstream names, so they may not contain "." or anything nginx or a URL
# would need to escape.
INSTANCE_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$')
ORIGIN_RE = re.compile(
    r'^(?P<scheme>https?)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)'
    r'(?::(?P<port>[0-9]{1,5}))?$')
PATH_RE = re.compile(r'^/[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$')
WORKER_CLASSES = ('eventlet', 'gevent')
ON_OFF = ('off', 'on')
LOG_LEVELS = ('debug', 'info', 'warning', 'error')
TRUE = ('1', 'true', 'yes', 'on')
FALSE = ('0', 'false', 'no', 'off')


@dataclass(frozen=True)
class Settings:
    """Settings of one Socket.IO instance."""
    instance_name: str
    redis_url: str
    cors_allowed_origins: Tuple[str, ...]
    cors_credentials: bool
    socketio_path: str
    ping_interval: int
    ping_timeout: int
    max_payload_bytes: int
    worker_class: str
    log_level: str
    bind: str
    session_cookie: str
    ws_compression: bool
    ws_compression_threshold: int
    max_client_buffer_bytes: int
    worker_connections: int
    stream_maxlen: int = 100_000
    stream_max_age: int = 600
    recovery_window: int = 120
    outbox_max_messages: int = 10_000
    outbox_max_age: int = 60

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
    socketio_path: str
    ping_interval: int
    ping_timeout: int
    max_payload_bytes: int

    @property
    def instance_names(self) -> Tuple[str, ...]:
        return tuple(f'app{i}' for i in range(1, self.instances + 1))


def _get(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name)
    return default if value is None or value.strip() == '' else value.strip()


def _int(env, name, default, low, high, unit=''):
    raw = _get(env, name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(
            f'{name}={raw!r} is not a whole number; set {name} to an integer '
            f'from {low} to {high}{unit}.') from None
    if not low <= value <= high:
        raise ConfigError(
            f'{name}={value} is out of range; set {name} to an integer from '
            f'{low} to {high}{unit}.')
    return value


def _bool(env, name, default):
    raw = _get(env, name, 'true' if default else 'false').lower()
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise ConfigError(f'{name}={raw!r} is not a boolean; set {name} to true '
                      f'or false.')


def _choice(env, name, default, choices):
    raw = _get(env, name, default).lower()
    if raw not in choices:
        raise ConfigError(f'{name}={raw!r} is not supported; set {name} to one '
                          f'of: {", ".join(choices)}.')
    return raw


def parse_origins(raw: str, credentials: bool) -> Tuple[str, ...]:
    """Parse CORS_ALLOWED_ORIGINS: exact `scheme://host[:port]` origins."""
    origins = tuple(o.strip() for o in raw.split(',') if o.strip())
    if not origins:
        raise ConfigError(
            'CORS_ALLOWED_ORIGINS is empty; set it to the comma-separated '
            'origins of the pages that connect, e.g. '
            'http://localhost:8081,https://app.example.com.')
    if '*' in origins:
        if credentials:
            raise ConfigError(
                'CORS_ALLOWED_ORIGINS=* cannot be combined with '
                'CORS_CREDENTIALS=true because browsers reject a wildcard '
                'origin on credentialed requests; list the exact origins in '
                'CORS_ALLOWED_ORIGINS or set CORS_CREDENTIALS=false.')
        if len(origins) > 1:
            raise ConfigError(
                'CORS_ALLOWED_ORIGINS mixes * with explicit origins; set it to '
                'either * or a list of exact origins.')
        return origins
    for origin in origins:
        match = ORIGIN_RE.match(origin)
        port = match and match.group('port')
        if not match or (port and not 0 < int(port) < 65536):
            raise ConfigError(
                f'CORS_ALLOWED_ORIGINS contains {origin!r}, which is not an '
                f'origin; write each one as scheme://host[:port] with http or '
                f'https and no path or trailing slash, e.g. '
                f'https://app.example.com.')
    return origins


def parse_path(env, name='SOCKETIO_PATH', default='/socket.io') -> str:
    raw = _get(env, name, default)
    if not raw.startswith('/'):
        raise ConfigError(f'{name}={raw!r} does not start with "/"; set it to '
                          f'an absolute path such as /socket.io.')
    if raw != '/' and raw.endswith('/'):
        raise ConfigError(f'{name}={raw!r} ends with "/"; drop the trailing '
                          f'slash, e.g. /socket.io.')
    if not PATH_RE.match(raw):
        raise ConfigError(f'{name}={raw!r} is not a plain URL path; use '
                          f'letters, digits, "-", "_", "." and "/" only, e.g. '
                          f'/socket.io.')
    return raw


def _ping(env):
    interval = _int(env, 'PING_INTERVAL', 25, 1, 3600, ' seconds')
    timeout = _int(env, 'PING_TIMEOUT', 20, 1, 3600, ' seconds')
    return interval, timeout


def load_settings(env: Optional[Mapping[str, str]] = None) -> Settings:
    """Read and check the settings of one instance."""
    env = os.environ if env is None else env
    name = _get(env, 'INSTANCE_NAME', socket.gethostname().split('.')[0])
    if not INSTANCE_NAME_RE.match(name):
        raise ConfigError(
            f'INSTANCE_NAME={name!r} is not a valid instance name; use 1-32 '
            f'letters, digits, "-" or "_" (no dots), e.g. app1.')
    redis_url = _get(env, 'REDIS_URL', 'redis://127.0.0.1:6379/0')
    if not redis_url.startswith(('redis://', 'rediss://', 'unix://')):
        raise ConfigError(
            f'REDIS_URL={redis_url!r} is not a Redis URL; set it to '
            f'redis://HOST:PORT/DB (or rediss:// or unix://).')
    credentials = _bool(env, 'CORS_CREDENTIALS', True)
    # Default: the kit's demo page, served on PAGE_PORT (another origin).
    page_port = _int(env, 'PAGE_PORT', 8081, 1, 65535)
    origins = parse_origins(
        _get(env, 'CORS_ALLOWED_ORIGINS',
             f'http://localhost:{page_port},http://127.0.0.1:{page_port}'),
        credentials)
    interval, timeout = _ping(env)
    bind = _get(env, 'BIND', '0.0.0.0:8000')
    host, _, port = bind.rpartition(':')
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f'BIND={bind!r} is not HOST:PORT; set it to e.g. '
                          f'0.0.0.0:8000.')
    cookie = _get(env, 'SESSION_COOKIE', 'kit_session')
    if not re.match(r'^[A-Za-z0-9_-]{1,64}$', cookie):
        raise ConfigError(f'SESSION_COOKIE={cookie!r} is not a cookie name; '
                          f'use letters, digits, "-" or "_".')
    max_payload = _int(env, 'MAX_PAYLOAD_BYTES', 1_000_000, 1024, 100_000_000,
                       ' bytes')
    max_buffer = _int(env, 'MAX_CLIENT_BUFFER_BYTES', 2 * 1024 * 1024,
                      65536, 1_000_000_000, ' bytes')
    if max_buffer < max_payload:
        raise ConfigError(
            f'MAX_CLIENT_BUFFER_BYTES={max_buffer} is smaller than '
            f'MAX_PAYLOAD_BYTES={max_payload}, so one full-size message would '
            f'disconnect its recipient; set MAX_CLIENT_BUFFER_BYTES to at '
            f'least {max_payload}.')
    window = _int(env, 'RECOVERY_WINDOW', 120, 0, 86400, ' seconds (0: off)')
    stream_age = _int(env, 'STREAM_MAX_AGE', max(600, window), max(1, window), 2592000,
                      ' seconds (at least RECOVERY_WINDOW, so every recovery can be replayed)')
    return Settings(
        instance_name=name,
        redis_url=redis_url,
        cors_allowed_origins=origins,
        cors_credentials=credentials,
        socketio_path=parse_path(env),
        ping_interval=interval,
        ping_timeout=timeout,
        max_payload_bytes=max_payload,
        worker_class=_choice(env, 'WORKER_CLASS', 'eventlet', WORKER_CLASSES),
        log_level=_choice(env, 'LOG_LEVEL', 'info', LOG_LEVELS),
        bind=bind,
        session_cookie=cookie,
        # Off, as in Node's socket.io: per-client deflate costs the server
        # 4-5x its broadcast throughput (BENCHMARKS.md).
        ws_compression=_choice(env, 'WS_COMPRESSION', 'off', ON_OFF) == 'on',
        # Node's default threshold: smaller frames gain nothing from deflate.
        ws_compression_threshold=_int(env, 'WS_COMPRESSION_THRESHOLD', 1024,
                                      0, 100_000_000, ' bytes'),
        max_client_buffer_bytes=max_buffer,
        # Concurrent requests (gunicorn) and, separately, WebSocket sessions
        # (app/engine.py) per instance; gunicorn's default of 1000 would refuse
        # clients long before the kit's 10,000-client target.
        worker_connections=_int(env, 'WORKER_CONNECTIONS', 20000, 1, 1_000_000),
        stream_maxlen=_int(env, 'STREAM_MAXLEN', 100_000, 1000, 10**8), stream_max_age=stream_age,
        recovery_window=window, outbox_max_age=_int(env, 'OUTBOX_MAX_AGE', 60, 1, 86400, ' s'),
        outbox_max_messages=_int(env, 'OUTBOX_MAX_MESSAGES', 10_000, 1, 10**7),
    )


def load_cluster(env: Optional[Mapping[str, str]] = None) -> Cluster:
    """Read and check the settings of the whole topology."""
    env = os.environ if env is None else env
    interval, timeout = _ping(env)
    # nginx closes a proxied connection that is silent for proxy_read_timeout.
    # Engine.IO only guarantees traffic every PING_INTERVAL, and a long-poll can
    # be held for PING_INTERVAL + PING_TIMEOUT, so the timeout must clear that
    # with margin.
    minimum = 2 * (interval + timeout)
    proxy_timeout = _int(env, 'PROXY_TIMEOUT', max(120, minimum), 1, 86400,
                         ' seconds')
    if proxy_timeout < minimum:
        raise ConfigError(
            f'PROXY_TIMEOUT={proxy_timeout} is too short for PING_INTERVAL='
            f'{interval} + PING_TIMEOUT={timeout}; nginx would cut idle '
            f'connections, so set PROXY_TIMEOUT to at least {minimum}.')
    return Cluster(
        instances=_int(env, 'INSTANCES', 3, 1, 32),
        http_port=_int(env, 'HTTP_PORT', 8080, 1, 65535),
        page_port=_int(env, 'PAGE_PORT', 8081, 1, 65535),
        app_base_port=_int(env, 'APP_BASE_PORT', 8001, 1, 65000),
        redis_port=_int(env, 'REDIS_PORT', 6390, 1, 65535),
        proxy_timeout=proxy_timeout,
        nginx_worker_connections=_int(env, 'NGINX_WORKER_CONNECTIONS', 20480,
                                      1024, 1_000_000),
        socketio_path=parse_path(env),
        ping_interval=interval,
        ping_timeout=timeout,
        max_payload_bytes=_int(env, 'MAX_PAYLOAD_BYTES', 1_000_000, 1024,
                               100_000_000, ' bytes'),
    )


def child_env(overrides: Mapping[str, str]) -> dict:
    """This process's environment plus overrides, for a child process."""
    return {**os.environ, **overrides}


def main(argv=None) -> int:
    """`python -m app.config`: check the environment, print one line."""
    try:
        settings, _ = load_settings(), load_cluster()
    except ConfigError as exc:
        print(f'config error: {exc}')
        return 2
    print(f'config ok: instance {settings.instance_name}, origins '
          f'{",".join(settings.cors_allowed_origins)}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
