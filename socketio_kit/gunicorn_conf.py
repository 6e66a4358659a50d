"""gunicorn settings of one instance: one async worker, configured from socketio_kit.config.

Used by `app/start` in both native mode and the containers:
`gunicorn -c python:socketio_kit.gunicorn_conf socketio_kit.wsgi:application`.
"""
import signal
import sys

from socketio_kit.config import ConfigError, load_settings
from socketio_kit.observability import logs

logs.silence_eventlet_banner()  # before gunicorn imports the worker class

try:
    _settings = load_settings()
except ConfigError as exc:
    print(f'config error: {exc}', file=sys.stderr)
    sys.exit(2)

bind = [_settings.bind]
if _settings.observability.metrics_port:
    # /metrics has a listener of its own (socketio_kit.wsgi answers it only there), so
    # the balancer, which proxies to BIND, can never expose it.
    bind.append(f'{_settings.bind.rpartition(":")[0]}:'
                f'{_settings.observability.metrics_port}')
# One worker per instance: Socket.IO sessions live in the worker's memory, and
# the balancer pins each session to an instance, not to a worker inside it.
workers = 1
worker_class = _settings.worker_class
worker_connections = _settings.worker_connections
timeout = 30
graceful_timeout = 5
keepalive = 75
loglevel = _settings.log_level
accesslog = None
errorlog = '-'
logger_class = logs.gunicorn_logger_class(_settings.observability.log_format)
proc_name = f'socketio-{_settings.instance_name}'
# gunicorn 25 opens a control socket at one fixed per-user path by default;
# several instances on one host would fight over it.
control_socket_disable = True


def post_worker_init(worker):
    """On SIGTERM, drain: refuse new sessions and drop the current ones.

    gunicorn alone keeps WebSocket clients attached until graceful_timeout and
    only then lets them reconnect elsewhere; and nginx's keepalive connections
    would still bring new handshakes to this instance while it waits. Draining
    sends both to the other instances at once (see socketio_kit.wsgi.InstanceApp).
    """
    graceful_exit = worker.handle_exit

    def on_sigterm(sig, frame):
        drain = getattr(worker.wsgi, 'drain', None)
        if drain is not None:
            drain()
        graceful_exit(sig, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
