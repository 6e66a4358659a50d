"""The kit's settings: one object read from the environment (settings.py),
its groups (security, observability, streams) and their parsers (parse.py).
Nothing outside this package reads os.environ."""
from socketio_kit.config.parse import ConfigError
from socketio_kit.config.settings import (
    INSTANCE_NAME_RE,
    KIT_PREFIX,
    Cluster,
    Protocol,
    Settings,
    child_env,
    load_cluster,
    load_protocol,
    load_settings,
    topology_defaults,
)

__all__ = ['INSTANCE_NAME_RE', 'KIT_PREFIX', 'Cluster', 'ConfigError', 'Protocol', 'Settings',
           'child_env', 'load_cluster', 'load_protocol', 'load_settings', 'topology_defaults']
