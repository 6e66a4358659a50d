"""Observability settings and the metrics object, with no network."""
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.config import ConfigError, load_cluster, load_settings
from app.metrics import NULL_METRICS, Metrics


def test_defaults():
    settings = load_settings({})
    assert settings.observability.metrics_port == 9100
    assert settings.observability.metrics_path == '/metrics'
    assert settings.observability.log_format == 'text'
    cluster = load_cluster({})
    assert cluster.observability.nginx_status_port == 8090


@pytest.mark.parametrize('env, word', [
    ({'METRICS_PORT': '8000', 'BIND': '0.0.0.0:8000'}, 'METRICS_PORT=8000'),
    ({'METRICS_PORT': 'x'}, 'METRICS_PORT'),
    ({'METRICS_PATH': 'metrics'}, 'METRICS_PATH'),
    ({'LOG_FORMAT': 'xml'}, 'LOG_FORMAT'),
])
def test_bad_values_name_the_variable(env, word):
    with pytest.raises(ConfigError, match=word):
        load_settings(env)


def test_null_metrics_accepts_every_hook():
    NULL_METRICS.connected()
    NULL_METRICS.adapter_lag(0.0)
    NULL_METRICS.recovery('recovered')


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
