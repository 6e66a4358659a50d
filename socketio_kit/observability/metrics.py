"""Prometheus metrics of one instance, served on their own port (METRICS_PORT).

`create_metrics()` builds a `Metrics` object with a registry of its own (no
process-wide default registry); the data plane calls its small hook methods
(`connected`, `event_received`, `fanout`, ...), and code that has no metrics
calls the same methods on `NULL_METRICS`, which does nothing. Label values are
bounded: event names the server does not handle count as `other`, and every
other label comes from a fixed tuple below.

The connected-clients gauge is not a counter kept up to date by connect and
disconnect hooks (which drift when a client vanishes without a close): it is
read from the Engine.IO sessions at scrape time, so a client lost to a killed
process or a dead network leaves it as soon as the server drops its session.
"""
import time
from typing import Callable, Dict, Iterable, Optional

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import make_wsgi_app

OTHER = 'other'
DISCONNECT_REASONS = ('client disconnect', 'server disconnect', 'ping timeout',
                      'transport close', 'transport error', OTHER)
REFUSED_REASONS = ('origin', 'auth', 'protocol', 'limit')
RECOVERY_RESULTS = ('recovered', 'expired', 'unknown')
TRANSPORTS = ('websocket', 'polling')
# Seconds. A broadcast to a few thousand local members takes milliseconds.
FANOUT_BUCKETS = (.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1,
                  .25, .5, 1.0)
LAG_BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1.0,
               2.5, 5.0, 10.0)


class NullMetrics:
    """The hooks, doing nothing: the default before (or without) metrics."""

    def __getattr__(self, name):
        return _nothing


def _nothing(*args, **kwargs):
    return None


NULL_METRICS = NullMetrics()


class ClientsCollector:
    """socketio_connected_clients{transport}, counted at scrape time from the
    Socket.IO clients of the default namespace and their Engine.IO sessions."""

    def __init__(self, sio):
        self.sio = sio

    def collect(self):
        counts = dict.fromkeys(TRANSPORTS, 0)
        sockets = self.sio.eio.sockets
        members = self.sio.manager.rooms.get('/', {}).get(None, {})
        for eio_sid in list(members.values()):
            sock = sockets.get(eio_sid)
            if sock is None or sock.closed:
                continue
            ws = getattr(sock, 'ws', None)
            counts['websocket' if ws is not None or sock.upgraded
                   else 'polling'] += 1
        family = GaugeMetricFamily(
            'socketio_connected_clients', 'Socket.IO clients connected now',
            labels=['transport'])
        for transport, count in counts.items():
            family.add_metric([transport], count)
        yield family


class WatchedGauges:
    """Gauges whose value is read from a callable at scrape time (Redis up,
    outbox length): whatever owns the state registers the callable."""

    def __init__(self):
        self.sources: Dict[str, Callable[[], float]] = {}

    def collect(self):
        for name, help_text in (
                ('socketio_redis_up', '1 when this instance reaches Redis'),
                ('socketio_adapter_outbox_messages',
                 'Messages waiting in the adapter outbox for Redis')):
            source = self.sources.get(name)
            try:
                value = float(source()) if source else 0.0
            except Exception:  # a scrape must not fail on a broken source
                value = float('nan')
            yield GaugeMetricFamily(name, help_text, value=value)


class Metrics:
    """The metrics of one instance and the hooks that update them."""

    def __init__(self, instance: str, worker_class: str = ''):
        self.registry = registry = CollectorRegistry()
        self.received_events: frozenset = frozenset()
        self.sent_events: frozenset = frozenset()
        self.watched = WatchedGauges()
        registry.register(self.watched)
        Gauge('socketio_instance_info', 'The instance this endpoint belongs to',
              ['instance_name', 'worker_class'], registry=registry
              ).labels(instance, worker_class).set(1)
        self.connects = Counter('socketio_connects', 'Socket.IO connections '
                                'accepted', registry=registry)
        self.disconnects = Counter('socketio_disconnects', 'Socket.IO clients '
                                   'gone, by reason', ['reason'], registry=registry)
        self.refused = Counter('socketio_connect_refused', 'Connections refused, '
                               'by reason', ['reason'], registry=registry)
        self.received = Counter('socketio_events_received', 'Events received '
                                'from clients', ['event'], registry=registry)
        self.sent = Counter('socketio_events_sent', 'Events written to clients '
                            '(one per recipient)', ['event'], registry=registry)
        self.fanout_seconds = Histogram(
            'socketio_broadcast_fanout_seconds', 'From a broadcast reaching '
            'this instance to its last local write', buckets=FANOUT_BUCKETS,
            registry=registry)
        self.publishes = Counter('socketio_adapter_publish', 'Messages this '
                                 'instance published to the adapter',
                                 registry=registry)
        self.lag_seconds = Histogram(
            'socketio_adapter_lag_seconds', 'From publish (on any instance) to '
            'fan-out here', buckets=LAG_BUCKETS, registry=registry)
        self.recoveries = Counter('socketio_recovery', 'Connection-state '
                                  'recovery attempts, by result', ['result'],
                                  registry=registry)
        for reason in DISCONNECT_REASONS:
            self.disconnects.labels(reason)
        for reason in REFUSED_REASONS:
            self.refused.labels(reason)
        for result in RECOVERY_RESULTS:
            self.recoveries.labels(result)

    # -- wiring ------------------------------------------------------------------
    def watch_server(self, sio, received: Iterable[str], sent: Iterable[str]):
        """Count this server's clients; name the events worth a label."""
        self.received_events = frozenset(received)
        self.sent_events = frozenset(sent)
        for event in (*self.received_events, OTHER):
            self.received.labels(event)
        for event in (*self.sent_events, OTHER):
            self.sent.labels(event)
        self.registry.register(ClientsCollector(sio))

    def watch(self, redis_up: Optional[Callable[[], float]] = None,
              outbox: Optional[Callable[[], float]] = None):
        """Register what socketio_redis_up / ..._outbox_messages read."""
        if redis_up is not None:
            self.watched.sources['socketio_redis_up'] = redis_up
        if outbox is not None:
            self.watched.sources['socketio_adapter_outbox_messages'] = outbox

    def endpoint(self, path: str):
        """The WSGI app of the metrics listener: `path`, and nothing else."""
        exposition = make_wsgi_app(self.registry)

        def serve(environ, start_response):
            if environ.get('PATH_INFO') != path:
                start_response('404 Not Found', [('Content-Type', 'text/plain')])
                return [f'metrics are at {path}\n'.encode()]
            return exposition(environ, start_response)
        return serve

    # -- hooks -------------------------------------------------------------------
    def connected(self):
        self.connects.inc()

    def disconnected(self, reason):
        self.disconnects.labels(reason if reason in DISCONNECT_REASONS
                                else OTHER).inc()

    def connect_refused(self, reason: str):
        if reason in REFUSED_REASONS:
            self.refused.labels(reason).inc()

    def event_received(self, event):
        self.received.labels(event if event in self.received_events
                             else OTHER).inc()

    def events_sent(self, event, count: int = 1):
        if count:
            self.sent.labels(event if event in self.sent_events
                             else OTHER).inc(count)

    def fanout(self, seconds: float):
        self.fanout_seconds.observe(seconds)

    def adapter_published(self):
        self.publishes.inc()

    def adapter_lag(self, published_at: float):
        """published_at: time.time() on the publishing instance."""
        self.lag_seconds.observe(max(0.0, time.time() - published_at))

    def recovery(self, result: str):
        self.recoveries.labels(result if result in RECOVERY_RESULTS
                               else 'unknown').inc()


def create_metrics(settings, sio, redis_up: Callable[[], bool]) -> Metrics:
    """The metrics of one instance, wired to its server: the events its
    handlers know get a label of their own, everything else is `other`."""
    metrics = Metrics(settings.instance_name, settings.worker_class)
    handled = {e for e in sio.handlers.get('/', {}) if e not in ('connect', 'disconnect', '*')}
    # What the server itself emits (the demo contract); backends' events are `other`.
    metrics.watch_server(sio, handled, ('welcome', 'message'))
    metrics.watch(redis_up=lambda: 1.0 if redis_up() else 0.0)
    sio.metrics = sio.eio.metrics = metrics
    return metrics
