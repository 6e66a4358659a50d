"""LOG_FORMAT=json against a real native instance: every line of its log is
one JSON object, and each operational event a person must act on (a refused
origin, a Redis outage and its end, a drain) is exactly one line with its
instance, event and reason; no eventlet banner, no engineio duplicate."""
import json
import time

import pytest

from tests.integration.metrics_support import wait_for
from tests.support import DENIED_ORIGIN, PATH, Client, http_request, local_cluster

# Private native clusters: under --target compose these are skipped.
pytestmark = pytest.mark.only_target('local')


@pytest.fixture(scope='module')
def kit(tmp_path_factory):
    with local_cluster(tmp_path_factory.mktemp('logs'), 1, {'LOG_FORMAT': 'json'}) as local:
        yield local


def records(kit):
    text = kit.processes.log_path('app1').read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines
    for line in lines:  # one object per line, nothing else
        obj = json.loads(line)
        assert isinstance(obj, dict) and obj['instance'] == 'app1', line
        assert {'time', 'level', 'logger', 'message'} <= set(obj), line
    return [json.loads(line) for line in lines]


def events(kit, event):
    return [r for r in records(kit) if r.get('event') == event]


def test_start_is_json_without_the_eventlet_banner(kit):
    recs = records(kit)
    assert any(r['logger'] == 'gunicorn.error' for r in recs)
    assert not [r for r in recs if 'Eventlet is deprecated' in r['message']
                or 'eventlet worker is DEPRECATED' in r['message']]


def test_refused_origin_is_one_line(kit):
    for _ in range(3):
        resp = http_request(kit.url, path=f'{PATH}/?EIO=4&transport=polling',
                            headers={'Origin': DENIED_ORIGIN})
        assert resp.status == 400
    time.sleep(0.5)
    about = [r for r in records(kit) if DENIED_ORIGIN in r['message']
             or 'not an accepted origin' in r['message']]
    assert len(about) == 1, about
    assert about[0]['level'] == 'WARNING'
    assert about[0]['event'] == 'connect_refused' and about[0]['reason'] == 'origin'
    assert 'CORS_ALLOWED_ORIGINS' in about[0]['message']


def test_redis_outage_is_one_line_each_way(kit):
    client = Client(kit.url).connect()
    try:
        kit.processes.send_signal('redis')
        wait_for(lambda: events(kit, 'redis_down'), 10, 'the outage is logged')
        time.sleep(3)  # the library keeps retrying meanwhile
        kit._start_redis()
        wait_for(lambda: events(kit, 'redis_up'), 10, 'the recovery is logged')
    finally:
        client.close()
    recs = records(kit)
    assert len(events(kit, 'redis_down')) == 1
    assert 'REDIS_URL' in events(kit, 'redis_down')[0]['message']
    assert not [r for r in recs if 'Cannot receive from redis' in r['message']]


def test_drain_is_one_line(kit):
    kit.processes.send_signal('app1')
    wait_for(lambda: events(kit, 'drain'), 10, 'the drain is logged')
    drain, = events(kit, 'drain')
    assert drain['reason'] == 'SIGTERM' and drain['level'] == 'WARNING'


def test_refused_token_is_one_line_and_counted(tmp_path_factory):
    """AUTH_MODE=jwt: an expired token is refused with one actionable line
    (sid, event, reason) and counted as socketio_connect_refused{reason=auth}."""
    import socketio

    from tests.integration.metrics_support import scrape, value
    from tests.integration.test_auth import JWT_ENV, token
    from tests.support import ALLOWED_ORIGIN
    env = {'LOG_FORMAT': 'json', **JWT_ENV}
    with local_cluster(tmp_path_factory.mktemp('logs-auth'), 1, env) as kit:
        client = socketio.Client(reconnection=False,
                                 websocket_extra_options={'suppress_origin': True})
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect(kit.url, headers={'Origin': ALLOWED_ORIGIN}, transports=['websocket'],
                           auth={'token': token(ttl=-3600)}, wait_timeout=5)
        client.disconnect()
        wait_for(lambda: events(kit, 'connect_refused'), 10, 'the refusal is logged')
        refused, = events(kit, 'connect_refused')
        assert refused['reason'] == 'auth' and refused['level'] == 'WARNING'
        assert 'expired' in refused['message'] and refused['sid']
        samples = scrape(kit.metrics_ports['app1'])
        assert value(samples, 'socketio_connect_refused_total', reason='auth') == 1
