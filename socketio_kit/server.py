"""`socketio_kit.Server`: a drop-in `socketio.Server` on the kit's runtime.

An application builds it as it would build python-socketio's server and
registers its handlers on it (`@sio.event`, `Namespace` classes); the kit
serves it through `APP=module:attr` (socketio_kit/loader.py). The runtime's
guarantees sit around whatever handlers the application registers:

- input: strict JSON, payload and rate limits before any handler
  (policy/guard.py); event shapes are the application's choice unless it
  asks for the strict contract (`strict_events=True`);
- auth: with AUTH_MODE=jwt the CONNECT's token is verified before any
  connect handler, in every namespace (policy/auth.py);
- rooms: every `enter_room`, the application's and recovery's, is admitted
  by policy/rooms.py (MAX_ROOMS_PER_CLIENT on the rooms the manager holds,
  the token's room claims, no room named like a sid);
- the kit's own namespace (`/_kit`) cannot be replaced by the application;
- recovery, the Redis Streams manager and the data plane, configured from
  the environment (socketio_kit/config), never from arguments.
"""
import logging
import os

import socketio
from socketio import packet

from socketio_kit.admin import NAMESPACE as ADMIN_NAMESPACE
from socketio_kit.admin import register_admin
from socketio_kit.cluster.fanout import FanoutManager
from socketio_kit.cluster.lease import ClusterTask
from socketio_kit.cluster.streams import StreamsManager
from socketio_kit.config import ConfigError, Settings, load_settings
from socketio_kit.observability import logsafe
from socketio_kit.observability.logs import fields
from socketio_kit.observability.metrics import NULL_METRICS
from socketio_kit.policy import strictjson
from socketio_kit.policy.auth import Authenticator, Unauthorized
from socketio_kit.policy.guard import GuardedServer
from socketio_kit.policy.limits import AddressBudgets, MessageTooLarge
from socketio_kit.policy.rooms import RoomAdmission, RoomRefused
from socketio_kit.transport.connection import Flusher
from socketio_kit.transport.engine import DataPlane, KitEngineServer
from socketio_kit.transport.greenio import Green

log = logging.getLogger('socketio_kit')
# The application's own errors: tracebacks kept (observability/logsafe.py).
app_log = logging.getLogger('socketio_kit.app')

# Arguments of socketio.Server that the kit's settings decide, and the
# variable that does: an application's value is ignored, with one line.
OWNED_ARGUMENTS = {
    'cors_allowed_origins': 'CORS_ALLOWED_ORIGINS',
    'cors_credentials': 'CORS_CREDENTIALS',
    'ping_interval': 'PING_INTERVAL',
    'ping_timeout': 'PING_TIMEOUT',
    'max_http_buffer_size': 'MAX_PAYLOAD_BYTES',
    'cookie': 'SESSION_BINDING',
    'json': 'strict JSON (always on)',
}
# Refusals an application's handler may let through: the event's ack (if
# any) carries the reason, as the guard's refusals do.
REFUSALS = (RoomRefused, MessageTooLarge)
SOCKETIO_DIR = os.path.dirname(socketio.__file__)


def _kit_arguments(kwargs: dict, settings: Settings) -> dict:
    """The application's arguments, minus the ones the kit decides."""
    mode = kwargs.pop('async_mode', None)
    if mode not in (None, settings.worker_class):
        raise ConfigError(f'socketio_kit.Server(async_mode={mode!r}) does not match '
                          f'WORKER_CLASS={settings.worker_class}; remove async_mode '
                          f'and choose the worker class with WORKER_CLASS.')
    for name, variable in OWNED_ARGUMENTS.items():
        if name in kwargs:
            value = kwargs.pop(name)
            if value is not None:
                log.warning('socketio_kit.Server(%s=...) is ignored: the kit sets it '
                            'from %s', name, variable)
    for name in ('logger', 'engineio_logger'):
        if kwargs.pop(name, False) not in (False, None):
            log.info('socketio_kit.Server(%s=...): the kit logs through its own '
                     'handlers (LOG_LEVEL, LOG_FORMAT)', name)
    return kwargs


def _called_wrongly(exc: TypeError) -> bool:
    """Whether a handler's TypeError came from calling it with arguments it
    does not take (raised where python-socketio calls it), not from inside."""
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename.startswith(SOCKETIO_DIR)


def own_origin(environ) -> str:
    """The origin a request was sent to, as the client saw it: through
    nginx, its X-Forwarded-Proto and X-Forwarded-Host (the client's Host,
    port included); direct, the request's own scheme and Host."""
    scheme = environ.get('HTTP_X_FORWARDED_PROTO') or environ.get('wsgi.url_scheme', 'http')
    host = environ.get('HTTP_X_FORWARDED_HOST') or environ.get('HTTP_HOST', '')
    return f'{scheme.split(",")[0].strip()}://{host.split(",")[0].strip()}'


class OriginPolicy:
    """The CORS allow-list, as the callable Engine.IO checks every Origin with.

    A page served by the application itself (same origin as the Socket.IO
    endpoint) is always allowed, as python-engineio does by default: that is
    not a cross-origin request. Engine.IO answers a refused origin with 400
    and no allow header. This also logs each refused origin once at WARNING,
    with the allow-list, because the first step in debugging a CORS error is
    seeing what the server refused.
    """

    def __init__(self, settings: Settings):
        self.instance = settings.instance_name
        self.allowed = frozenset(settings.cors_allowed_origins)
        self.refused = set()

    def __call__(self, origin, environ=None):
        if origin in self.allowed:
            return True
        if origin is None:          # no Origin: nothing to allow (or refuse)
            return False
        if environ is not None and origin == own_origin(environ):
            return True
        if origin not in self.refused and len(self.refused) < 1000:
            self.refused.add(origin)
            log.warning('instance %s refused origin %r: not in '
                        'CORS_ALLOWED_ORIGINS=%s', self.instance, origin,
                        ','.join(sorted(self.allowed)),
                        extra=fields(event='connect_refused', reason='origin'))
        return False


def data_plane(settings: Settings) -> DataPlane:
    green = Green(settings.worker_class)
    return DataPlane(
        green=green, flusher=Flusher(green),
        compression=settings.ws_compression,
        compression_threshold=settings.ws_compression_threshold,
        max_message=settings.protocol.max_payload_bytes,
        max_client_buffer=settings.max_client_buffer_bytes,
        max_websockets=settings.worker_connections)


def create_manager(settings: Settings) -> StreamsManager:
    """The instance's client manager: one Redis stream, capped at
    ADAPTER_MAX_MESSAGE_BYTES."""
    streams = settings.streams
    return StreamsManager(
        settings.redis_url, maxlen=streams.maxlen, max_age=streams.max_age,
        outbox_max=streams.outbox_max_messages, outbox_max_age=streams.outbox_max_age,
        max_message_bytes=settings.security.adapter_max_message_bytes)


class Server(GuardedServer, socketio.Server):
    """python-socketio's Server with the kit's engine, manager, recovery,
    guard, auth and room admission, configured from the environment.

    `strict_events=True` turns on the demo contract's input shape (one object
    per event, no binary); by default events carry what python-socketio
    allows: several arguments, any JSON value, binary attachments.
    """

    # socketio_kit.recovery.Recovery when RECOVERY_WINDOW > 0 (its hooks below).
    recovery = None
    # socketio_kit.observability.metrics.Metrics once the instance wires it.
    metrics = NULL_METRICS

    def __init__(self, *, settings: Settings = None, client_manager=None,
                 strict_events: bool = False, async_handlers: bool = False, **kwargs):
        settings = settings or load_settings()
        kwargs = _kit_arguments(kwargs, settings)
        plane = data_plane(settings)
        if not isinstance(client_manager, FanoutManager):
            if client_manager is not None:   # e.g. socketio.RedisManager(url)
                log.warning('socketio_kit.Server(client_manager=%s) is ignored: the kit '
                            'sets it from REDIS_URL (its manager carries the cap, '
                            'recovery and room admission)', type(client_manager).__name__)
            client_manager = create_manager(settings)
        client_manager.compression_threshold = plane.compression_threshold
        super().__init__(
            json=strictjson,
            async_mode=settings.worker_class,
            client_manager=client_manager,
            cors_allowed_origins='*' if settings.cors_wildcard else OriginPolicy(settings),
            cors_credentials=settings.cors_credentials,
            ping_interval=settings.protocol.ping_interval,
            ping_timeout=settings.protocol.ping_timeout,
            max_http_buffer_size=settings.protocol.max_payload_bytes,
            # By default each client's events in order, as Socket.IO's own
            # server does: with a greenlet per event, two broadcasts from one
            # client could reach the room in the wrong order. An application
            # that needs sio.call() in its handlers passes async_handlers=True.
            async_handlers=async_handlers,
            logger=logsafe.library_logger('socketio.kit'),
            engineio_logger=logsafe.library_logger('engineio.kit'),
            **kwargs)
        self.settings = settings
        self.instance_name = settings.instance_name
        self.security = settings.security
        self.strict_events = strict_events
        self.address_budgets = AddressBudgets(self.security)
        self.auth = Authenticator(self.security)
        self.admission = RoomAdmission(self.security, self.auth)
        self.cluster_tasks = []
        self.eio.use(self.instance_name, plane)
        register_admin(self, self.auth, self.instance_name)
        self.kit_namespaces = frozenset((ADMIN_NAMESPACE,))

    def _engineio_server_class(self):
        return KitEngineServer

    # -- what the application may not replace ------------------------------
    def on(self, event, handler=None, namespace=None):
        self._refuse_kit_namespace(namespace)
        return super().on(event, handler, namespace)

    def register_namespace(self, namespace_handler):
        self._refuse_kit_namespace(getattr(namespace_handler, 'namespace', None))
        return super().register_namespace(namespace_handler)

    def _refuse_kit_namespace(self, namespace):
        if namespace in getattr(self, 'kit_namespaces', ()):
            raise ValueError(
                f'namespace {namespace} is the kit\'s own (instance statistics for '
                f'the admin role); give yours another name')

    # -- the guarantees around the application's handlers ------------------
    def _trigger_event(self, event, namespace, *args):
        """Every handler call passes here: auth before any connect handler,
        refusals turned into the event's ack, and the counters."""
        metrics = self.metrics
        if event == 'connect':
            return self._connect_event(namespace, *args)
        if event == 'disconnect':
            metrics.disconnected(args[-1] if len(args) > 1 else None)
        else:
            metrics.event_received(event)
        try:
            return super()._trigger_event(event, namespace, *args)
        except REFUSALS as exc:
            return self._refused(event, args, str(exc), type(exc).__name__)
        except TypeError as exc:
            if not _called_wrongly(exc):
                return self._failed(event, namespace)
            # The client sent arguments the handler does not take: its
            # mistake, not the application's, so an error ack and one line.
            return self._refused(event, args, f'event {event!r} does not take '
                                              f'{len(args) - 1} arguments', 'arguments')
        except Exception:
            return self._failed(event, namespace)

    def _failed(self, event, namespace):
        """The application's handler raised: its traceback, for its
        developers (rate-limited like every line); the client stays
        connected and its event gets no ack, as in python-socketio."""
        self.count('handler error')
        app_log.exception('the handler of %r (namespace %s) raised', event, namespace or '/')

    def _refused(self, event, args, why: str, reason: str):
        self.count(reason)
        log.info('event %r refused: %s', event, why,
                 extra=fields(sid=args[0] if args else None, event='refused'))
        return {'ok': False, 'error': why}

    def _connect_event(self, namespace, sid, environ, auth_data=None, *rest):
        metrics = self.metrics
        try:
            if (namespace or '/') not in self.kit_namespaces:  # they check the role
                self._authenticate(sid, namespace, auth_data)
            try:
                result = super()._trigger_event('connect', namespace, sid, environ,
                                                auth_data, *rest)
            except TypeError as exc:
                if not _called_wrongly(exc):
                    raise
                # A connect handler without the auth argument (the docs'
                # `def connect(sid, environ)`): called without it, even when
                # the client sent auth (a token, with AUTH_MODE=jwt).
                result = super()._trigger_event('connect', namespace, sid, environ)
        except (socketio.exceptions.ConnectionRefusedError, ConnectionRefusedError) as exc:
            metrics.connect_refused('auth')
            log.warning('connection refused: %s', exc, extra=fields(
                sid=sid, event='connect_refused', reason='auth'))
            raise
        except Exception:
            # The application's connect handler raised: the client is
            # refused (`connect_error`), its developers get the traceback.
            self._failed('connect', namespace)
            result = False
        if result is False:
            metrics.connect_refused('auth')
        else:
            metrics.connected()
        return result

    def _authenticate(self, sid, namespace, auth_data):
        """AUTH_MODE=jwt: the CONNECT's token, verified; its claims are kept
        for room admission (socketio_kit/policy/rooms.py) and `claims()`."""
        try:
            claims = self.auth.claims(auth_data)
        except Unauthorized as exc:
            self.count(f'connect refused: {exc.why}')
            raise
        state = self.state_of(sid, namespace or '/')
        if state is not None and claims is not None:
            state.claims = claims

    def claims(self, sid, namespace=None):
        """The verified token claims of a client (AUTH_MODE=jwt), or None."""
        state = self.state_of(sid, namespace or '/')
        return None if state is None else state.claims

    def enter_room(self, sid, room, namespace=None):
        """python-socketio's enter_room, admitted by the kit's room policy:
        raises RoomRefused (a ValueError) with the reason."""
        namespace = namespace or '/'
        why = self.admission.refusal(self.manager, sid, namespace, room,
                                     self.claims(sid, namespace))
        if why:
            raise RoomRefused(why)
        return super().enter_room(sid, room, namespace=namespace)

    def recovered(self, sid, namespace=None) -> bool:
        """Whether this connection recovered an earlier session (Node's
        `socket.recovered`): its rooms and session data are back, and what
        it missed is replayed. Valid in the connect handler and after."""
        if self.recovery is None:
            return False
        return self.recovery.was_recovered(sid, namespace or '/')

    def start_cluster_task(self, target, *args, **kwargs):
        """Run `target(*args, **kwargs)` on exactly one instance of the
        cluster at a time (a lease in Redis, with fencing); another instance
        takes over within the lease when the holder dies. Returns the
        ClusterTask, whose `holding` says whether this instance runs it."""
        task = ClusterTask(self, self.manager, target, args, kwargs)
        self.cluster_tasks.append(task)
        task.start()
        return task

    # -- recovery's hooks ---------------------------------------------------
    def _handle_connect(self, eio_sid, namespace, data):
        if self.recovery is None:
            return super()._handle_connect(eio_sid, namespace, data)
        data = self.recovery.before_connect(eio_sid, namespace or '/', data)
        try:
            if eio_sid not in self.environ:     # gone while its pid was checked
                return None
            return super()._handle_connect(eio_sid, namespace, data)
        finally:
            self.recovery.after_connect(eio_sid, namespace or '/')

    def save_session(self, sid, session, namespace=None):
        super().save_session(sid, session, namespace)
        if self.recovery is not None:  # into the client's recoverable record
            self.recovery.saved(sid, namespace or '/', session)

    def _send_packet(self, eio_sid, pkt):
        if self.recovery is not None and pkt.packet_type == packet.CONNECT:
            self.recovery.connect_reply(eio_sid, pkt)  # adds the pid
        return super()._send_packet(eio_sid, pkt)

    def _handle_disconnect(self, eio_sid, namespace, reason=None):
        if self.recovery is not None:
            self.recovery.closing(eio_sid, namespace or '/', reason)
        return super()._handle_disconnect(eio_sid, namespace, reason)


def drop_sessions(sio: socketio.Server):
    """Close every Engine.IO session's transport without a goodbye.

    Used when the instance is told to stop. Clients see a lost transport and
    reconnect at once, through nginx, to a live instance; a Socket.IO or
    Engine.IO "close" packet would instead tell them the server is done with
    them, and python-socketio clients would not come back.
    """
    eio = sio.eio
    for session in list(eio.sockets.values()):
        session.close(wait=False, abort=True,
                      reason=eio.reason.TRANSPORT_CLOSE)
    eio.sockets.clear()
