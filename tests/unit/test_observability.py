"""Observability settings and the metrics object, with no network."""
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from socketio_kit.config import ConfigError, load_cluster, load_settings
from socketio_kit.observability.metrics import NULL_METRICS, Metrics


def test_defaults():
    settings = load_settings({})
    assert settings.observability.metrics_port == 9100
    assert settings.observability.metrics_path == '/metrics'
    assert settings.observability.log_format == 'text'
    cluster = load_cluster({})
    assert cluster.observability.nginx_status_port == 8082


@pytest.mark.parametrize('env, word', [
    ({'METRICS_PORT': '8000', 'BIND': '0.0.0.0:8000'}, 'METRICS_PORT=8000'),
    ({'METRICS_PORT': 'x'}, 'METRICS_PORT'),
    ({'METRICS_PATH': 'metrics'}, 'METRICS_PATH'),
    ({'LOG_FORMAT': 'xml'}, 'LOG_FORMAT'),
])
def test_bad_values_name_the_variable(env, word):
    with pytest.raises(ConfigError, match=word):
        load_settings(env)


def metrics_hooks():
    """The hooks of the real Metrics class: its public methods below the
    wiring (watch_server, watch, endpoint), each with arguments its signature
    takes. A hook added to Metrics is in this list by itself."""
    import inspect
    wiring = {'watch_server', 'watch', 'endpoint'}
    samples_by_name = {'reason': 'ping timeout', 'event': 'message', 'result': 'recovered',
                       'count': 2, 'seconds': 0.001, 'published_at': time.time()}
    hooks = {}
    for name, method in inspect.getmembers(Metrics, inspect.isfunction):
        if name.startswith('_') or name in wiring:
            continue
        params = list(inspect.signature(method).parameters.values())[1:]
        missing = [p.name for p in params if p.name not in samples_by_name
                   and p.default is inspect.Parameter.empty]
        assert not missing, f'Metrics.{name}: no sample argument for {missing}'
        hooks[name] = [samples_by_name[p.name] for p in params if p.name in samples_by_name]
    return hooks


def test_null_metrics_accepts_every_hook():
    """Code without metrics calls the same hooks on NULL_METRICS: each one the
    real Metrics has exists there, takes the same arguments and does nothing
    (returns None), and the same calls count on a real Metrics."""
    hooks = metrics_hooks()
    assert {'connected', 'disconnected', 'connect_refused', 'event_received', 'events_sent',
            'fanout', 'adapter_published', 'adapter_lag', 'recovery'} <= set(hooks)
    real = Metrics('app1')
    for name, args in hooks.items():
        assert callable(getattr(NULL_METRICS, name)), name
        assert getattr(NULL_METRICS, name)(*args) is None, name
        getattr(real, name)(*args)
    got = samples(real)
    assert got[('socketio_connects_total', ())] == 1
    assert got[('socketio_recovery_total', (('result', 'recovered'),))] == 1
    assert got[('socketio_disconnects_total', (('reason', 'ping timeout'),))] == 1


def samples(metrics: Metrics):
    text = metrics.endpoint('/metrics')(
        {'PATH_INFO': '/metrics', 'REQUEST_METHOD': 'GET', 'QUERY_STRING': ''},
        lambda status, headers: None)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(b''.join(text).decode())
            for s in f.samples}


def test_labels_stay_bounded():
    metrics = Metrics('app1', 'eventlet')
    metrics.received_events = frozenset({'join'})
    for event in ('join', 'a', 'b', 'c'):
        metrics.event_received(event)
    metrics.disconnected('something new')
    metrics.connect_refused('not a reason')
    metrics.recovery('weird')
    metrics.watch(outbox=lambda: 7)
    got = samples(metrics)
    assert got[('socketio_events_received_total', (('event', 'join'),))] == 1
    assert got[('socketio_events_received_total', (('event', 'other'),))] == 3
    assert got[('socketio_disconnects_total', (('reason', 'other'),))] == 1
    assert got[('socketio_recovery_total', (('result', 'unknown'),))] == 1
    assert got[('socketio_adapter_outbox_messages', ())] == 7
    assert got[('socketio_redis_up', ())] == 0
    assert not [k for k in got if k[0] == 'socketio_connect_refused_total'
                and ('reason', 'not a reason') in k[1]]


def test_connect_handler_refusal_is_counted_and_logged(caplog):
    import socketio

    from socketio_kit.server import Server
    sio = Server(settings=load_settings({'INSTANCE_NAME': 'app1'}))
    metrics = Metrics('app1')
    sio.metrics = metrics

    @sio.event
    def connect(sid, environ, auth=None):
        raise socketio.exceptions.ConnectionRefusedError('token expired')

    with caplog.at_level('WARNING', logger='socketio_kit'), \
            pytest.raises(socketio.exceptions.ConnectionRefusedError):
        sio._trigger_event('connect', '/', 'sid1', {}, None)
    record, = [r for r in caplog.records if r.name == 'socketio_kit']
    assert (record.sid, record.event, record.reason) == ('sid1', 'connect_refused', 'auth')
    assert 'token expired' in record.getMessage()
    got = samples(metrics)
    assert got[('socketio_connect_refused_total', (('reason', 'auth'),))] == 1


def test_json_formatter_one_object_with_fields():
    import json
    import logging

    from socketio_kit.observability.logs import InstanceField, fields, formatter
    record = logging.LogRecord('socketio_kit', logging.WARNING, __file__, 1, 'refused %s',
                               ('x',), None)
    for key, value in fields(sid='s1', event='connect_refused', reason='origin').items():
        setattr(record, key, value)
    InstanceField('app2').filter(record)
    line = formatter('json', 'app2').format(record)
    assert '\n' not in line
    obj = json.loads(line)
    assert obj['message'] == 'refused x' and obj['instance'] == 'app2'
    assert (obj['sid'], obj['event'], obj['reason']) == ('s1', 'connect_refused', 'origin')


def test_grafana_dashboard_uses_only_metrics_the_kit_serves():
    import json
    import re
    from pathlib import Path

    dashboard = json.loads((Path(__file__).resolve().parents[2] / 'compose' / 'grafana'
                            / 'socketio-kit.json').read_text())
    exprs = [t['expr'] for p in dashboard['panels'] for t in p['targets']]
    used = {re.sub(r'_(bucket|total)$', '', n) for e in exprs
            for n in re.findall(r'\bsocketio_[a-z_]+', e)}
    served = {m.name for m in Metrics('app1').registry.collect()} | {
        'socketio_connected_clients'}
    assert used <= served, used - served
    assert {'socketio_connected_clients', 'socketio_broadcast_fanout_seconds',
            'socketio_adapter_lag_seconds', 'socketio_recovery'} <= used
