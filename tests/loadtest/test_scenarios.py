"""Small runs of each scenario against a running cluster (50 clients, a few
seconds), through the CLI's Python entry point. They assert behaviour
(delivery, transport, reconnect), never speed.

They use the `cluster` fixture (.url, .instances, .kind, .kill/.stop/.start),
so the same tests run against the native and the compose cluster.
"""
import json

import pytest

from loadtest.cli import EXIT_OK, main
from loadtest.report import missing_fields

CLIENTS = 50


def run(cluster, tmp_path, *args):
    out = tmp_path / 'result.json'
    code = main([*args, '--url', cluster.url, '-c', str(CLIENTS), '-q',
                 '--out', str(out)], cluster)
    result = json.loads(out.read_text())
    assert missing_fields(result) == []
    return code, result


def ensure_running(cluster, name):
    """Start name again if a failed run left it down."""
    lc = getattr(cluster, 'lc', None)
    if lc is None or not lc.is_running(name):
        cluster.start(name)


def check_common(result, cluster):
    assert result['transport']['asked'] == 'websocket'
    assert result['transport']['got'] == {'websocket': CLIENTS}
    assert result['connect']['connected'] == CLIENTS
    assert set(result['connect']['clients_per_instance']) == set(cluster.instances)
    assert result['machine']['cores'] >= 1 and result['machine']['ram_gib']
    assert result['versions']['aiohttp'] and result['command'].startswith(
        'python -m loadtest ')


def test_broadcast(cluster, tmp_path):
    code, result = run(cluster, tmp_path, 'broadcast', '-s', '5', '-r', '20',
                       '-d', '3', '--drain', '2')
    assert code == EXIT_OK, result['problems']
    check_common(result, cluster)
    d = result['delivery']
    assert d['sent'] > 0 and d['acked'] == d['sent']
    assert d['delivery_ratio'] == 1.0
    assert d['duplicates'] == 0 and d['out_of_order'] == 0
    assert d['cross_instance_deliveries'] > 0 and d['same_instance_deliveries'] > 0
    assert d['latency_ms']['cross_instance']['p99'] is not None
    assert result['valid'] is True
    assert any(p.endswith('-latency-cdf.png') for p in result['plots'])


@pytest.mark.parametrize('mode', ['kill', 'stop'])
def test_reconnect(cluster, tmp_path, mode):
    victim = cluster.instances[-1]
    try:
        code, result = run(cluster, tmp_path, 'reconnect', '--kill-mode', mode,
                           '--victim', victim, '-s', '4', '-r', '20', '-d', '8',
                           '--kill-after', '2', '--drain', '2', '--deadline', '15')
    finally:
        ensure_running(cluster, victim)  # leave the cluster whole
    assert code == EXIT_OK, result['problems']
    check_common(result, cluster)
    r = result['reconnect']
    assert r['victim'] == victim and r['affected_clients'] > 0
    assert r['back_and_receiving'] == r['affected_clients']
    assert r['pct_back_within_deadline'] == 100.0
    assert victim not in r['landed_after']
    assert r['missed_total_unaffected'] == 0
    assert result['restore']['new_clients_reach_restored'] is True
    assert result['timeline']['kill_at'] is not None
    assert any(p.endswith('-timeline.png') for p in result['plots'])


def test_ramp(cluster, tmp_path):
    code, result = run(cluster, tmp_path, 'ramp', '--connect-rate', '100',
                       '--hold', '1')
    assert code == EXIT_OK, result['problems']
    check_common(result, cluster)
    assert result['ramp']['still_connected'] == CLIENTS
    assert result['connect']['connect_latency_ms']['count'] == CLIENTS
    assert set(result['ramp']['memory']) == set(cluster.instances)


def test_slow_consumer(cluster, tmp_path):
    code, result = run(cluster, tmp_path, 'slow-consumer', '-s', '5', '-r', '20',
                       '-d', '3', '--drain', '2', '--rss-every', '0.5')
    assert code == EXIT_OK, result['problems']
    check_common(result, cluster)
    sc = result['slow_consumer']
    assert sc['slow_instance'] in cluster.instances
    # The other clients still get everything; the member that never reads is
    # not counted among them.
    assert sc['baseline']['delivery_ratio'] == 1.0
    assert sc['with_slow_consumer']['delivery_ratio'] == 1.0
    assert sc['with_slow_consumer']['latency_ms']['p99'] is not None
    assert isinstance(sc['server_disconnected_slow_consumer'], bool)
    assert sc['rss_timeline'] and sc['slow_socket_at_end']['state']
