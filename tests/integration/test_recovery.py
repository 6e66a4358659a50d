"""Zero message loss, proven with the real socket.io-client (Node, from
page/node_modules): connection-state recovery across instances after SIGKILL
(with the clients' session data) and SIGTERM, Redis outages, a Redis
restarted empty, a rolling restart, RECOVERY_WINDOW, and pids that must not
recover anything.

Every test runs a private native cluster (real redis-server with its
append-only file, nginx, 3 gunicorn instances) with RECOVERY_WINDOW=5.
"""
import json
import shutil
import signal
import time
import urllib.request

import pytest

from control.native import NativeController
from control.rolling import rolling_restart
from tests.integration.recovery_support import ROOT, NodeClients, Sender, accounting, busiest
from tests.support import local_cluster, new_room

WINDOW = 5
pytestmark = [
    pytest.mark.only_target('local'),
    pytest.mark.skipif(
        shutil.which('node') is None or not (
            ROOT / 'page' / 'node_modules' / 'socket.io-client').is_dir(),
        reason='needs node and page/node_modules (make page-deps; make test-local does it)'),
]


@pytest.fixture(scope='module', params=['eventlet', 'gevent'])
def lc(request, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp(f'recovery-{request.param}')
    with local_cluster(run_dir, 3, {'WORKER_CLASS': request.param,
                                    'RECOVERY_WINDOW': str(WINDOW)}) as local:
        local.worker_class = request.param
        yield local


def stats(lc, name) -> dict:
    try:
        url = lc.health_url(name).replace('/_kit/healthz', '/_kit/stats')
        with urllib.request.urlopen(url, timeout=2) as reply:
            return json.load(reply)
    except urllib.error.HTTPError as exc:
        return json.load(exc)


def run_with_senders(lc, room, senders_on, during, before=1.0, after=4.0, rate=10):
    """Senders on the given instances at `rate` msgs/s each; `during()` runs
    after `before` seconds; sending goes on for `after` seconds more."""
    senders = [Sender(lc.app_url(name), f'snd-{name}', room, rate) for name in senders_on]
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
        victim, spread = busiest(state)
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
            assert stats(lc, name)['stream'].get('recovered', 0) >= 1 or \
                all(c['instances'][-1] != name for c in moved)
    finally:
        node.close()
        lc.start_instance(victim)


def test_session_data_recovers_after_sigkill(lc):
    """Clients keep a value in their session (`remember`, save_session); their
    instance is SIGKILLed: on the instance each recovers on (`recovered`
    true, same sid), `whoami` acks the value back."""
    room = new_room()
    node = NodeClients(lc.url, 6, room)
    victim = None
    try:
        state = node.wait_ready()
        values = {c['i']: f'v{c["i"]}-{room}' for c in state['clients']}
        for i, value in values.items():
            reply = node.ask(f'remember {i} {value}')
            assert reply.get('ack', {}).get('ok'), reply
        for bad in ('', 'x' * 300):       # no value; over 256 characters
            assert node.ask(f'remember 0 {bad}')['ack']['ok'] is False
        victim, spread = busiest(state)
        moved = spread[victim]
        lc.processes.send_signal(victim, signal.SIGKILL)
        after = node.wait(lambda s: all(c['connected'] and c['connects'] >= 2
                                        for c in s['clients'] if c['i'] in moved))
        for c in after['clients']:
            who = node.ask(f'whoami {c["i"]}')['ack']
            assert who['remembered'] == values[c['i']], (c, who)
            assert who['sid'] == state['clients'][c['i']]['sid'], (c, who)
            if c['i'] in moved:
                assert c['recovered'] is True, c
                assert who['instance'] != victim, who
    finally:
        node.close()
        if victim is not None:
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


def _cross_delay(report, senders, t_down, t_up):
    """Seconds after Redis answered until the last message sent during the
    outage reached a client on another instance than its sender."""
    worst = 0.0
    for c in report['clients']:
        for s in senders:
            if c['instances'][-1] == s.name.split('-', 1)[1]:
                continue
            for q, at in zip(c['seqs'].get(s.name, []), c['times'].get(s.name, [])):
                if t_down <= s.sent_at[q] <= t_up:
                    worst = max(worst, at - t_up)
    return worst


def test_redis_outage_loses_nothing(lc):
    """Redis stopped for 5 s under 20 msgs/s, then started with its data:
    every client stays connected and gets every message once; the messages
    of the outage cross instances within 1 s of Redis answering."""
    room = new_room()
    node = NodeClients(lc.url, 9, room)
    times = {}

    def outage():
        times['down'] = time.time()
        lc.processes.send_signal('redis')
        time.sleep(5)
        lc.start_redis()
        times['up'] = time.time()

    try:
        node.wait_ready()
        senders, _ = run_with_senders(lc, room, ['app1', 'app2'], outage, after=3)
        time.sleep(1.5)
        report = node.ask('report')
        counts = accounting(report, {s.name: s.sent for s in senders})
        delay = _cross_delay(report, senders, times['down'], times['up'])
        print(f'redis outage 5s: {sum(s.sent for s in senders)} sent, {counts}, '
              f'outage messages across instances {delay:.2f}s after Redis answered')
        assert counts['missed'] == 0 and counts['duplicated'] == 0, counts
        assert all(len(c['connects']) == 1 and c['connected'] for c in report['clients'])
        assert delay <= 1.0
        assert all(stats(lc, n)['stream'].get('outages', 0) >= 1 for n in lc.app_ports)
    finally:
        node.close()
        lc.start_redis()


def test_redis_restarted_empty_gives_new_sessions(lc):
    """Redis restarted without its data: every instance sees the new epoch,
    clients that reconnect get new sessions at once, broadcast works."""
    if lc.worker_class != 'eventlet':
        pytest.skip('runs on eventlet only')
    room = new_room()
    node = NodeClients(lc.url, 3, room)
    try:
        node.wait_ready()
        run_with_senders(lc, room, ['app3'], lambda: None, before=0.5, after=0.3)
        lc.processes.send_signal('redis')
        deadline = time.monotonic() + 10
        while lc.processes.is_running('redis') and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(lc.run_dir / 'appendonlydir', ignore_errors=True)
        lc.start_redis()
        time.sleep(1.0)     # the listeners' next epoch check
        for i in range(3):
            node.ask(f'drop {i} 200')
        started = time.monotonic()
        state = node.wait(lambda s: s['ready'] and all(c['connects'] == 2
                                                       for c in s['clients']))
        print(f'after an empty Redis: 3 new sessions in {time.monotonic() - started:.2f}s')
        assert all(c['recovered'] is False for c in state['clients'])
        assert all(stats(lc, n)['stream'].get('epoch_changes', 0) >= 1
                   for n in lc.app_ports)
        senders, _ = run_with_senders(lc, room, ['app1'], lambda: None, before=0.5, after=0.3)
        time.sleep(0.5)
        counts = accounting(node.ask('report'), {s.name: s.sent for s in senders})
        assert counts['missed'] == 0 and counts['duplicated'] == 0, counts
    finally:
        node.close()
        lc.start_redis()


def test_rolling_restart_loses_nothing(lc):
    """Every instance restarted, one at a time, under 20 msgs/s from a
    backend emitter: every reconnect recovers, nothing missed or doubled."""
    if lc.worker_class != 'eventlet':
        pytest.skip('runs on eventlet only')
    from tests.integration.recovery_support import EmitterSender
    room = new_room()
    node = NodeClients(lc.url, 9, room)
    try:
        node.wait_ready()
        sender = EmitterSender(lc.redis_url, 'emitter', room, 20)
        sender.start()
        try:
            time.sleep(1)
            rolling_restart(NativeController(lc), lc.url, say=print)
            time.sleep(2)
        finally:
            sender.finish()
        assert not sender.errors, sender.errors
        time.sleep(1.5)
        report = node.ask('report')
        counts = accounting(report, {sender.name: sender.sent})
        print(f'rolling restart: {sender.sent} sent, {counts}')
        assert counts['missed'] == 0 and counts['duplicated'] == 0, counts
        for c in report['clients']:
            assert c['connected'] and all(x['recovered'] for x in c['connects'][1:]), c
    finally:
        node.close()


def test_instance_started_without_redis_still_saves_sessions(lc):
    """An instance that starts while Redis is down (a compose start-up race)
    writes its sessions once Redis answers: after a SIGKILL they recover."""
    if lc.worker_class != 'eventlet':
        pytest.skip('runs on eventlet only')
    lc.processes.send_signal('app3')
    lc.processes.send_signal('redis')
    lc._spawn_instance('app3')
    time.sleep(3)                          # app3 is up, Redis still down
    lc.start_redis()
    lc._wait_instance('app3')
    room = new_room()
    node = NodeClients(lc.url, 6, room)
    try:
        state = node.wait_ready()
        on_app3 = [c['i'] for c in state['clients'] if c['instance'] == 'app3']
        assert on_app3, state
        senders, _ = run_with_senders(
            lc, room, ['app1'], lambda: lc.processes.send_signal('app3', signal.SIGKILL),
            before=1.0, after=3.0)
        time.sleep(1.0)
        report = node.ask('report')
        counts = accounting(report, {s.name: s.sent for s in senders})
        assert counts['missed'] == 0 and counts['duplicated'] == 0, counts
        for c in report['clients']:
            if c['i'] in on_app3:
                assert [x['recovered'] for x in c['connects'][1:]] == [True], c['connects']
    finally:
        node.close()
        lc.start_redis()
        if not lc.processes.is_running('app3'):
            lc.start_instance('app3')
