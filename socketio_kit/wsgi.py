"""The WSGI application gunicorn serves: Socket.IO plus three small HTTP routes.

- `GET /healthz`: `{"instance": ..., "redis": "ok"|"down"}`, 200 or 503
  (also 503, with `"draining": true`, once the instance is stopping).
- `GET /stats`: the stream manager's counters (outbox, outages, epoch
  changes, recoveries refused/done, replayed events).
- `GET /session`: sets the kit's session cookie, so a page on another origin
  can show that credentials reach the Socket.IO handshake (`welcome.session`).
Everything else under SOCKETIO_PATH is python-socketio's.
"""
import json
import logging
import secrets
import sys
from urllib.parse import parse_qs

import redis
import socketio

from socketio_kit.config import KIT_PREFIX, ConfigError, Settings, load_settings
from socketio_kit.loader import load_application
from socketio_kit.observability import logs, logsafe
from socketio_kit.observability.metrics import create_metrics
from socketio_kit.policy.auth import demo_token
from socketio_kit.policy.binding import SessionBinding
from socketio_kit.recovery import Recovery
from socketio_kit.server import drop_sessions
from socketio_kit.transport.engine import HANDLED

WORKER_BOOT_ERROR = 3   # gunicorn.arbiter.Arbiter.WORKER_BOOT_ERROR


def _json(start_response, status, body, headers=()):
    payload = json.dumps(body).encode()
    start_response(status, [('Content-Type', 'application/json'),
                            ('Content-Length', str(len(payload))),
                            ('Cache-Control', 'no-store'), *headers])
    return [payload]


class HttpRoutes:
    """The kit's own HTTP routes, all under KIT_PREFIX, so that every other
    path outside SOCKETIO_PATH is the application's (README, "HTTP routes"):

    - `GET /_kit/healthz`: `{"instance", "redis": "ok"|"down"}`, 200, or 503
      when Redis does not answer or the instance is draining;
    - `GET /_kit/stats`: the stream manager's counters;
    - `GET /_kit/session`: sets the kit's session cookie (CORS-checked);
    - `GET /_kit/token`: a demo token, only with DEMO_TOKENS=true.
    Any other path under the prefix is a 404 here, never the application's.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.draining = False
        self.stats = None       # the manager's counters (socketio_kit/cluster/streams.py)
        # Its own small client with short timeouts: a health check must answer
        # quickly even when Redis hangs.
        self.redis = redis.Redis.from_url(
            settings.redis_url, socket_timeout=1, socket_connect_timeout=1)

    def redis_status(self):
        try:
            return 'ok' if self.redis.ping() else 'down'
        except redis.RedisError:
            return 'down'

    def cors_headers(self, environ):
        origin = environ.get('HTTP_ORIGIN')
        allowed = self.settings.cors_allowed_origins
        if not origin or (origin not in allowed and allowed != ('*',)):
            return []
        headers = [('Access-Control-Allow-Origin', origin), ('Vary', 'Origin')]
        if self.settings.cors_credentials:
            headers.append(('Access-Control-Allow-Credentials', 'true'))
        return headers

    def owns(self, environ) -> bool:
        """Whether a request is for these routes rather than the application's:
        the whole prefix is the kit's."""
        path = environ.get('PATH_INFO', '')
        return path == KIT_PREFIX or path.startswith(KIT_PREFIX + '/')

    def __call__(self, environ, start_response):
        # The route inside the prefix; a path outside it matches none below.
        path = environ.get('PATH_INFO', '')[len(KIT_PREFIX):] if self.owns(environ) else None
        method = environ.get('REQUEST_METHOD', 'GET')
        name = self.settings.instance_name
        if path == '/healthz' and method in ('GET', 'HEAD'):
            status = self.redis_status()
            body = {'instance': name, 'redis': status}
            if self.draining:
                body['draining'] = True
            ok = status == 'ok' and not self.draining
            return _json(start_response,
                         '200 OK' if ok else '503 Service Unavailable', body)
        if path == '/stats' and method == 'GET' and self.stats is not None:
            return _json(start_response, '200 OK', {'instance': name, 'stream': self.stats()})
        if path == '/session' and method in ('GET', 'POST', 'OPTIONS'):
            cors = self.cors_headers(environ)
            if method == 'OPTIONS':
                start_response('204 No Content', cors + [
                    ('Access-Control-Allow-Methods', 'GET, POST, OPTIONS')])
                return [b'']
            value = secrets.token_urlsafe(12)
            security = self.settings.security
            cookie = (f'{self.settings.session_cookie}={value}; Path=/; '
                      f'HttpOnly; SameSite={security.cookie_samesite.title()}'
                      + ('; Secure' if security.cookie_secure else ''))
            return _json(start_response, '200 OK',
                         {'instance': name, 'session': value},
                         cors + [('Set-Cookie', cookie)])
        if path == '/token' and method == 'GET' and \
                self.settings.security.demo_tokens:
            return self.demo_token(environ, start_response)
        return _json(start_response, '404 Not Found',
                     {'error': 'not found', 'instance': name})

    def demo_token(self, environ, start_response):
        """DEMO_TOKENS=true only: a token for the demo page's rooms."""
        query = parse_qs(environ.get('QUERY_STRING', ''))
        rooms = [r for r in query.get('room', ['lobby', 'demo-*'])
                 if 0 < len(r) <= 128][:10]
        token = demo_token(self.settings.security,
                           f'demo-{secrets.token_hex(4)}', rooms)
        return _json(start_response, '200 OK', {'token': token},
                     self.cors_headers(environ))


def configure_logging(settings: Settings):
    # One line per error, rate-limited (socketio_kit/observability/logsafe.py), as text or JSON.
    logs.configure(settings.instance_name, settings.log_level,
                   settings.observability.log_format,
                   filters=(logsafe.OneLine(),
                            logsafe.RateLimit(settings.security.log_rate_per_minute)))
    log = logging.getLogger('socketio_kit')
    if settings.security.demo_tokens:
        log.warning('DEMO_TOKENS=true: GET /token hands a valid token to '
                    'anyone; never enable it in production')


class InstanceApp:
    """Socket.IO plus the HTTP routes, and the switch that drains the instance.

    Once draining, a new Engine.IO handshake (a request without a sid) gets a
    503, which nginx answers by retrying the handshake on another instance.
    """

    def __init__(self, settings: Settings, sio: socketio.Server, http=None):
        self.sio = sio
        self.routes = HttpRoutes(settings)
        self.http = http        # the application's own WSGI app, if APP wraps one
        self.prefix = settings.protocol.socketio_path + '/'
        # Requests on the metrics listener (METRICS_PORT) reach only this.
        self.metrics_port = str(settings.observability.metrics_port)
        self.metrics_app = None
        security = settings.security
        self.binding = None
        if security.session_binding != 'off':
            self.binding = SessionBinding(
                settings.session_cookie, settings.protocol.socketio_path,
                security.cookie_samesite, security.cookie_secure, sio.environ,
                security.session_binding)

    def drain(self):
        """Refuse new sessions and drop the current ones (on SIGTERM)."""
        self.routes.draining = True
        logging.getLogger('socketio_kit').warning(
            'draining: new sessions go to the other instances, and the %d current '
            'ones are dropped so their clients reconnect there', len(self.sio.eio.sockets),
            extra=logs.fields(event='drain', reason='SIGTERM'))
        for task in self.sio.cluster_tasks:    # another instance takes it at once
            task.stop()
        self.sio.start_background_task(drop_sessions, self.sio)

    def __call__(self, environ, start_response):
        if environ.get('SERVER_PORT') == self.metrics_port:
            return self.metrics_app(environ, start_response)
        if self.routes.draining and \
                environ.get('PATH_INFO', '').startswith(self.prefix) and \
                'sid' not in parse_qs(environ.get('QUERY_STRING', '')):
            return _json(start_response, '503 Service Unavailable',
                         {'error': 'instance is stopping',
                          'instance': self.routes.settings.instance_name},
                         [('Retry-After', '1')])
        if not environ.get('PATH_INFO', '').startswith(self.prefix):
            if self.http is not None and not self.routes.owns(environ):
                return self.http(environ, start_response)
            return self.routes(environ, start_response)
        # Straight to Engine.IO: socketio.WSGIApp's middleware would define a
        # class per request (engineio.middleware's `Input`), which the
        # session's environ would then keep alive.
        if self.binding is not None:
            result = self.binding(environ, start_response,
                                  self.sio.handle_request)
        else:
            result = self.sio.handle_request(environ, start_response)
        if result is HANDLED:
            # The WebSocket took the connection over (on its own descriptor):
            # gunicorn must close its copy without writing a response.
            raise StopIteration
        return result


def create_app(settings: Settings) -> InstanceApp:
    """Build the WSGI app of one instance: the application APP names, on the
    kit's runtime, plus the kit's HTTP routes."""
    configure_logging(settings)
    application = load_application(settings)
    sio = application.sio
    manager = sio.manager
    # Read the stream from now on rather than from the first connection, so
    # that a broadcast sent just after a client's first connect is not missed.
    sio.manager_initialized = True
    manager.initialize()
    if settings.streams.recovery_window:
        Recovery(sio, manager, settings.streams.recovery_window,
                 settings.protocol.max_payload_bytes,
                 settings.max_client_buffer_bytes).start()
    logs.quiet_library_handlers()  # the servers just added theirs
    app = InstanceApp(settings, sio, application.http)
    app.routes.stats = manager.health
    watch = logs.RedisWatch(lambda: app.routes.redis_status() == 'ok')
    sio.start_background_task(watch.run, sio.sleep)
    metrics = create_metrics(settings, sio, lambda: watch.up)
    metrics.watch(outbox=lambda: len(manager.outbox))
    app.metrics_app = metrics.endpoint(settings.observability.metrics_path)
    return app


def _load():
    try:
        settings = load_settings()
        return create_app(settings)
    except ConfigError as exc:
        # gunicorn would print a traceback; one sentence is what helps. Exit
        # status 3 is gunicorn's "worker failed to boot": its master stops at
        # once instead of booting the same mistake again and again.
        print(f'config error: {exc}', file=sys.stderr)
        raise SystemExit(WORKER_BOOT_ERROR) from None


application = _load()
