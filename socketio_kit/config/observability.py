"""The observability settings: where /metrics is served, the log format, and
the ports native mode and nginx use for them (README "Observability").

Part of socketio_kit/config/settings.py's settings (`Settings.observability`,
`Cluster.observability`), in a module of its own only to keep each file
small, as security.py does: settings.py calls these parsers with
the same environment mapping, so nothing here reads os.environ, and a bad
value raises ConfigError with one sentence naming the variable.
"""
from dataclasses import dataclass
from typing import Mapping

from socketio_kit.config.parse import ConfigError, _choice, _get, _int

LOG_FORMATS = ('text', 'json')


@dataclass(frozen=True)
class Observability:
    """Per instance: the metrics listener (0: none) and the log format."""
    metrics_port: int
    metrics_path: str
    log_format: str


@dataclass(frozen=True)
class ClusterObservability:
    """Topology: native mode's metrics ports and nginx's internal status port."""
    metrics_base_port: int
    nginx_status_port: int


def load_observability(env: Mapping[str, str], bind_port: int) -> Observability:
    port = _int(env, 'METRICS_PORT', 9100, 0, 65535, ' (0: no metrics listener)')
    if port == bind_port:
        raise ConfigError(
            f'METRICS_PORT={port} is the port of BIND; set METRICS_PORT to a port '
            f'of its own (default 9100), so the balancer never reaches /metrics.')
    path = _get(env, 'METRICS_PATH', '/metrics')
    if not path.startswith('/') or len(path) > 64 or not path[1:].replace(
            '/', '').replace('-', '').replace('_', '').isalnum():
        raise ConfigError(f'METRICS_PATH={path!r} is not a plain absolute path; '
                          f'set it to e.g. /metrics.')
    return Observability(metrics_port=port, metrics_path=path,
                         log_format=_choice(env, 'LOG_FORMAT', 'text', LOG_FORMATS))


def load_cluster_observability(env: Mapping[str, str]) -> ClusterObservability:
    return ClusterObservability(
        metrics_base_port=_int(env, 'METRICS_BASE_PORT', 9101, 1, 65000),
        nginx_status_port=_int(env, 'NGINX_STATUS_PORT', 8082, 1, 65535),
    )
