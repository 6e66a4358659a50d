"""/metrics against a real native cluster (redis-server, nginx, 2 gunicorn
instances): the metrics follow real clients connecting, leaving, being killed
(FIN) and freezing (no FIN: dropped after PING_INTERVAL + PING_TIMEOUT), and
the listener is reachable only where it should be."""
import os
import signal

import pytest
import requests

from tests.integration.metrics_support import (
    client_process,
    connected,
    scrape,
    value,
    wait_for,
)
from tests.support import (
    ALLOWED_ORIGIN,
    DENIED_ORIGIN,
    PATH,
    Client,
    clients,
    http_request,
    local_cluster,
    new_room,
)

# Short pings, so a frozen client is dropped within seconds.
ENV = {'PING_INTERVAL': '2', 'PING_TIMEOUT': '2'}

# Private native clusters: under --target compose these are skipped.
pytestmark = pytest.mark.only_target('local')


@pytest.fixture(scope='module', params=['eventlet', 'gevent'])
def kit(request, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp(f'metrics-{request.param}')
    with local_cluster(run_dir, 2, {**ENV, 'WORKER_CLASS': request.param}) as local:
        yield local


def total(kit, metric, **labels):
    return sum(value(scrape(p), metric, **labels) for p in kit.metrics_ports.values())


def clients_on(kit, name):
    return connected(scrape(kit.metrics_ports[name]))


def test_metrics_listener_is_internal(kit):
    port = kit.metrics_ports['app1']
    samples = scrape(port)
    assert value(samples, 'socketio_instance_info', instance_name='app1',
                 worker_class=kit.env['WORKER_CLASS']) == 1
    assert value(samples, 'socketio_redis_up') == 1
    assert ('socketio_adapter_outbox_messages', ()) in samples  # 0: pub/sub has none
    # Only the metrics path on the metrics port; not on the app port, not
    # through nginx.
    assert requests.get(f'http://127.0.0.1:{port}/_kit/healthz', timeout=5).status_code == 404
    assert requests.get(f'http://127.0.0.1:{kit.app_ports["app1"]}/metrics',
                        timeout=5).status_code == 404
    assert requests.get(f'{kit.url}/metrics', timeout=5).status_code == 404
    assert requests.get(f'{kit.url}/stub_status', timeout=5).status_code == 404
    status = kit.settings.observability.nginx_status_port
    body = requests.get(f'http://127.0.0.1:{status}/stub_status', timeout=5).text
    assert body.startswith('Active connections:'), body


def all_disconnects(kit):
    return sum(total(kit, 'socketio_disconnects_total', reason=r)
               for r in ('client disconnect', 'transport close', 'ping timeout'))


def test_connected_clients_follow_clients_that_leave_die_and_freeze(kit):
    base = {n: clients_on(kit, n) for n in kit.app_ports}
    connects = total(kit, 'socketio_connects_total')
    with client_process(kit.url) as (killed, killed_on), \
            client_process(kit.url) as (frozen, frozen_on), \
            client_process(kit.url, 'polling') as (_, polling_on), \
            clients(kit.url, 2) as clean:
        here = [killed_on, frozen_on, polling_on, *(c.instance for c in clean)]

        def settle(what):
            for name in kit.app_ports:
                wait_for(lambda n=name: clients_on(kit, n) == base[n] + here.count(n), 15,
                         f'{what}: {name} counts its {here.count(name)} clients')
        settle('all connected')
        assert total(kit, 'socketio_connects_total') == connects + 5
        assert value(scrape(kit.metrics_ports[polling_on]), 'socketio_connected_clients',
                     transport='polling') >= 1

        gone = all_disconnects(kit)
        clean[0].close()  # a clean close (python-socketio's client may
        here.remove(clean[0].instance)  # close the transport before its '41')
        settle('a clean close')

        os.kill(killed.pid, signal.SIGKILL)  # a crash: the kernel sends FIN
        here.remove(killed_on)
        settle('a killed client')
        assert all_disconnects(kit) == gone + 2

        # Frozen: no FIN, no pong. Whichever notices first, the ping timeout
        # or the reader's silence timeout (PING_INTERVAL + PING_TIMEOUT),
        # drops it: `ping timeout` or `transport close`.
        os.kill(frozen.pid, signal.SIGSTOP)
        here.remove(frozen_on)
        settle('a frozen client')
        assert all_disconnects(kit) == gone + 3
    for name in kit.app_ports:
        wait_for(lambda n=name: clients_on(kit, n) == base[n], 15,
                 f'{name} is back to {base[name]} clients')


def test_events_broadcasts_and_adapter(kit):
    before = {p: scrape(p) for p in kit.metrics_ports.values()}
    room = new_room()
    with clients(kit.url, 4) as members:
        assert {m.instance for m in members} == set(kit.app_ports)
        for m in members:
            assert m.call('join', {'room': room})['ok']
        assert members[0].call('broadcast', {'room': room, 'data': 1})['ok']
        assert all(len(m.drain(1)) == 1 for m in members)
        # An event the server does not handle: counted, as `other`.
        assert members[0].call('no-such-event-7f3a', {})['ok'] is False
        after = {p: scrape(p) for p in kit.metrics_ports.values()}
    labels = {dict(k[1]).get('event') for s in after.values() for k in s}
    assert 'no-such-event-7f3a' not in labels

    def delta(name, **labels):
        return sum(value(after[p], name, **labels) - value(before[p], name, **labels)
                   for p in after)
    assert delta('socketio_events_received_total', event='join') == 4
    assert delta('socketio_events_received_total', event='broadcast') == 1
    assert delta('socketio_events_received_total', event='other') == 1
    assert delta('socketio_events_sent_total', event='message') == 4
    assert delta('socketio_events_sent_total', event='welcome') == 4
    assert delta('socketio_adapter_publish_total') >= 1
    # Every instance fanned the broadcast out, and measured its lag.
    for port in after:
        assert value(after[port], 'socketio_broadcast_fanout_seconds_count') > \
            value(before[port], 'socketio_broadcast_fanout_seconds_count')
        assert value(after[port], 'socketio_adapter_lag_seconds_count') > \
            value(before[port], 'socketio_adapter_lag_seconds_count')


def test_refused_connections_by_reason(kit):
    before = {r: total(kit, 'socketio_connect_refused_total', reason=r)
              for r in ('origin', 'protocol')}
    resp = http_request(kit.url, path=f'{PATH}/?EIO=4&transport=polling',
                        headers={'Origin': DENIED_ORIGIN})
    assert resp.status == 400
    resp = http_request(kit.url, path=f'{PATH}/?EIO=3&transport=polling',
                        headers={'Origin': ALLOWED_ORIGIN})
    assert resp.status == 400
    assert total(kit, 'socketio_connect_refused_total', reason='origin') == before['origin'] + 1
    assert total(kit, 'socketio_connect_refused_total', reason='protocol') == \
        before['protocol'] + 1
    # The client that broke nothing is still welcome.
    client = Client(kit.url).connect()
    client.close()
