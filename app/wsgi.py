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

from app import recovery
from app.config import ConfigError, Settings, load_settings
from app.engine import HANDLED
from app.server import create_server, drop_sessions
from app.streams import StreamsManager


def _json(start_response, status, body, headers=()):
    payload = json.dumps(body).encode()
    start_response(status, [('Content-Type', 'application/json'),
                            ('Content-Length', str(len(payload))),
                            ('Cache-Control', 'no-store'), *headers])
    return [payload]


class HttpRoutes:
    """The non-Socket.IO routes of an instance."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.draining = False
        self.stats = None       # the manager's counters (app/streams.py)
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

    def __call__(self, environ, start_response):
        path = environ.get('PATH_INFO', '')
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
            cookie = (f'{self.settings.session_cookie}={value}; Path=/; '
                      f'HttpOnly; SameSite=Lax')
            return _json(start_response, '200 OK',
                         {'instance': name, 'session': value},
                         cors + [('Set-Cookie', cookie)])
        return _json(start_response, '404 Not Found',
                     {'error': 'not found', 'instance': name})


def configure_logging(settings: Settings):
    logging.basicConfig(
        level=settings.log_level.upper(), stream=sys.stderr,
        format=f'%(asctime)s %(levelname)s [{settings.instance_name}] '
               f'%(name)s: %(message)s')


class InstanceApp:
    """Socket.IO plus the HTTP routes, and the switch that drains the instance.

    Once draining, a new Engine.IO handshake (a request without a sid) gets a
    503, which nginx answers by retrying the handshake on another instance.
    """

    def __init__(self, settings: Settings, sio: socketio.Server):
        self.sio = sio
        self.routes = HttpRoutes(settings)
        self.prefix = settings.socketio_path + '/'

    def drain(self):
        """Refuse new sessions and drop the current ones (on SIGTERM)."""
        self.routes.draining = True
        self.sio.start_background_task(drop_sessions, self.sio)

    def __call__(self, environ, start_response):
        if self.routes.draining and \
                environ.get('PATH_INFO', '').startswith(self.prefix) and \
                'sid' not in parse_qs(environ.get('QUERY_STRING', '')):
            return _json(start_response, '503 Service Unavailable',
                         {'error': 'instance is stopping',
                          'instance': self.routes.settings.instance_name},
                         [('Retry-After', '1')])
        if not environ.get('PATH_INFO', '').startswith(self.prefix):
            return self.routes(environ, start_response)
        # Straight to Engine.IO: socketio.WSGIApp's middleware would define a
        # class per request (engineio.middleware's `Input`), which the
        # session's environ would then keep alive.
        result = self.sio.handle_request(environ, start_response)
        if result is HANDLED:
            # The WebSocket took the connection over (on its own descriptor):
            # gunicorn must close its copy without writing a response.
            raise StopIteration
        return result


def create_app(settings: Settings) -> InstanceApp:
    """Build the WSGI app of one instance: Socket.IO + HTTP routes."""
    configure_logging(settings)
    manager = StreamsManager(
        settings.redis_url, maxlen=settings.stream_maxlen,
        max_age=settings.stream_max_age,
        outbox_max=settings.outbox_max_messages,
        outbox_max_age=settings.outbox_max_age)
    sio = create_server(settings, client_manager=manager)
    # Read the stream from now on rather than from the first connection, so
    # that a broadcast sent just after a client's first connect is not missed.
    sio.manager_initialized = True
    manager.initialize()
    if settings.recovery_window:
        recovery.enable(sio, manager, settings.recovery_window)
    app = InstanceApp(settings, sio)
    app.routes.stats = manager.health
    return app


def _load():
    try:
        return load_settings()
    except ConfigError as exc:
        # gunicorn would print a traceback; one sentence is what helps.
        print(f'config error: {exc}', file=sys.stderr)
        raise SystemExit(2) from None


application = create_app(_load())
