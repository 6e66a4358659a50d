"""Someone else's application on the kit: examples/teamchat, loaded through
APP=app:app APP_PATH=examples/teamchat, driven by the real socket.io-client
and python-socketio's Client. The kit's guarantees hold around the app's own
handlers: its `join` cannot enter a sid room or pass MAX_ROOMS_PER_CLIENT,
its own `connect` cannot let a client in without a token, its background task
runs on one instance at a time, and `sio.recovered(sid)` tells a recovered
connection from a new one."""
import json
import subprocess
import time
from pathlib import Path

import jwt
import pytest
import socketio

from control import NativeController
from tests.support import ALLOWED_ORIGIN, local_cluster, needs_socketio_client, teamchat_idioms

ROOT = Path(__file__).resolve().parents[2]
NODE = ROOT / 'tests' / 'node'
APP_ENV = {'APP': 'app:app', 'APP_PATH': str(ROOT / 'examples' / 'teamchat'),
           'MAX_ROOMS_PER_CLIENT': '5'}
SECRET = 'teamchat-secret-' + 'x' * 40
JWT_ENV = {'AUTH_MODE': 'jwt', 'JWT_SECRET': SECRET, 'JWT_AUDIENCE': 'teamchat',
           'JWT_ISSUER': 'https://issuer.test'}

pytestmark = pytest.mark.only_target('local')


@pytest.fixture(scope='module')
def app_cluster(tmp_path_factory):
    with local_cluster(tmp_path_factory.mktemp('teamchat'), 2, APP_ENV) as lc:
        yield lc


class PyClient:
    """python-socketio's Client, straight to one instance over WebSocket."""

    def __init__(self, url, auth=None, namespaces=None):
        self.sio = socketio.Client(reconnection=False,
                                   websocket_extra_options={'suppress_origin': True})
        self.events = []
        self.hello = None
        self.sio.on('hello', self._on_hello)
        self.sio.on('*', lambda event, *args: self.events.append((event, args)))
        errors = []
        for namespace in namespaces or ['/']:
            self.sio.on('connect_error', errors.append, namespace=namespace)
        try:
            self.sio.connect(url, headers={'Origin': ALLOWED_ORIGIN}, transports=['websocket'],
                             auth=auth, namespaces=namespaces, wait_timeout=10)
        except socketio.exceptions.ConnectionError as exc:
            raise socketio.exceptions.ConnectionError(f'{exc}: {errors}') from None

    def _on_hello(self, hello):
        self.hello = hello

    def wait_hello(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while self.hello is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.hello

    def call(self, event, *args, timeout=10):
        return self.sio.call(event, args if len(args) != 1 else args[0], timeout=timeout)

    def close(self):
        self.sio.disconnect()


def test_the_docs_idioms_work_across_instances(app_cluster):
    needs_socketio_client()
    a, b = app_cluster.app_ports
    seen = teamchat_idioms(app_cluster.app_url(a), app_cluster.app_url(b))
    assert seen['helloA']['instance'] == a and seen['helloB']['instance'] == b
    assert seen['ready'] == a          # the namespace's client connected to A's URL


def test_the_apps_own_join_cannot_enter_a_sid_room_or_too_many(app_cluster):
    a, b = app_cluster.app_ports
    x, y = PyClient(app_cluster.app_url(a)), PyClient(app_cluster.app_url(b))
    try:
        victim = y.wait_hello()['sid']
        x.wait_hello()
        refused = x.call('join', victim)
        assert refused['ok'] is False and 'session ids are reserved' in refused['error']
        y.call('rename', 'yves')
        time.sleep(0.3)
        x.sio.emit('whisper', (victim, 'for y only'))
        deadline = time.monotonic() + 5
        while not any(e == 'whisper' for e, _ in y.events) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(e == 'whisper' for e, _ in y.events)
        assert not any(e == 'whisper' for e, _ in x.events)   # not in y's room
        acks = [x.call('join', f'room-{i}') for i in range(8)]
        assert acks[:5] == [('joined', f'room-{i}') for i in range(5)]
        for ack in acks[5:]:
            assert ack['ok'] is False and 'MAX_ROOMS_PER_CLIENT' in ack['error'], ack
    finally:
        x.close()
        y.close()


def test_the_cluster_task_runs_on_one_instance_and_moves_after_sigkill(app_cluster):
    names = list(app_cluster.app_ports)
    watchers = {name: PyClient(app_cluster.app_url(name)) for name in names}
    try:
        time.sleep(4.5)
        ticks = [args[0] for w in watchers.values() for e, args in w.events if e == 'tick']
        per_client = [[a[0] for e, a in w.events if e == 'tick'] for w in watchers.values()]
        assert ticks, 'no tick in 4.5 s'
        assert len({(t['fence'], t['instance']) for t in ticks}) == 1, ticks
        for seen in per_client:     # each client gets each tick once, in order
            ns = [t['n'] for t in seen]
            assert ns == sorted(set(ns)), ns
        holder = ticks[0]['instance']
        survivor = next(n for n in names if n != holder)
        watchers.pop(holder).sio.eio.disconnect(abort=True)
        NativeController(app_cluster).kill(holder)
        killed_at = time.monotonic()
        w = watchers[survivor]
        before = len(w.events)
        deadline = killed_at + 20
        moved = None
        while moved is None and time.monotonic() < deadline:
            for event, args in w.events[before:]:
                if event == 'tick' and args[0]['instance'] == survivor:
                    moved = time.monotonic() - killed_at
                    break
            time.sleep(0.1)
        assert moved is not None, 'the task did not move to the survivor within 20 s'
        after = [a[0] for e, a in w.events[before:] if e == 'tick']
        assert all(t['instance'] == survivor and t['fence'] > ticks[0]['fence']
                   for t in after if t['instance'] != holder)
        print(f'cluster task moved {moved:.1f} s after the SIGKILL')
    finally:
        for watcher in watchers.values():
            watcher.close()
        NativeController(app_cluster).start(holder)


def test_recovered_is_true_after_a_sigkill_and_rooms_and_session_are_kept(app_cluster):
    needs_socketio_client()
    proc = subprocess.Popen(['node', str(NODE / 'recovered.mjs'), app_cluster.url,
                             ALLOWED_ORIGIN, 'rita'], stdout=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        assert first['recovered'] is False and first['clientRecovered'] is False
        assert first['joins'] == [['joined', f'r{i}'] for i in range(5)]
        NativeController(app_cluster).kill(first['instance'])
        second = json.loads(proc.stdout.readline())
        assert second['sid'] == first['sid'] and second['instance'] != first['instance']
        assert second['recovered'] is True and second['clientRecovered'] is True
        last = json.loads(proc.stdout.readline())
        assert last['whoami'] == ['rita', second['instance'], True]
        # The five restored rooms count towards MAX_ROOMS_PER_CLIENT.
        extra, = last['extra']
        assert extra['ok'] is False and 'MAX_ROOMS_PER_CLIENT' in extra['error'], extra
    finally:
        proc.kill()
        proc.wait(timeout=10)
        NativeController(app_cluster).start(first['instance'])


def _token(rooms):
    now = int(time.time())
    return jwt.encode({'sub': 't', 'aud': 'teamchat', 'iss': 'https://issuer.test',
                       'iat': now, 'exp': now + 300, 'rooms': rooms}, SECRET,
                      algorithm='HS256')


def test_jwt_is_checked_before_the_apps_own_connect(tmp_path):
    with local_cluster(tmp_path / 'jwt', 1, {**APP_ENV, **JWT_ENV}) as lc:
        url = lc.app_url(next(iter(lc.app_ports)))
        for auth in (None, {'name': 'mallory'}, {'token': _token(['x'])[:-4] + 'AAAA'}):
            with pytest.raises(socketio.exceptions.ConnectionError, match='unauthorized'):
                PyClient(url, auth=auth)
        with pytest.raises(socketio.exceptions.ConnectionError, match='unauthorized'):
            PyClient(url, auth=None, namespaces=['/stats'])
        ok = PyClient(url, auth={'token': _token(['team-*']), 'name': 'tess'})
        try:
            assert ok.wait_hello()['recovered'] is False
            assert ok.call('join', 'team-a') == ('joined', 'team-a')
            refused = ok.call('join', 'elsewhere')
            assert refused['ok'] is False and 'not authorized' in refused['error']
        finally:
            ok.close()
