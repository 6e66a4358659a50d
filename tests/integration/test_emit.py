"""The emitter (socketio_kit/emit.py), from outside the cluster: its messages reach the
room's members on every instance exactly once, and no one else. It finds a
native cluster without REDIS_URL, and holds a message to what the instances
accept (ADAPTER_MAX_MESSAGE_BYTES, strict JSON), as their own emits are held:
a refused message leaves no entry in the Redis stream."""
import json
import subprocess
import sys
import time

import pytest
import redis

from native.cluster import ROOT
from socketio_kit.emit import NATIVE_SETTINGS, create_emitter
from socketio_kit.policy.limits import MessageTooLarge
from tests.support import WebSocketSession, clients, local_cluster, new_room

# Private native clusters: under --target compose these are skipped.
pytestmark = pytest.mark.only_target('local')

# A small adapter cap, and client messages small enough for it (the cap must
# carry one MAX_PAYLOAD_BYTES message).
CAP = 5000
SMALL = {'ADAPTER_MAX_MESSAGE_BYTES': str(CAP), 'MAX_PAYLOAD_BYTES': '3000'}
STREAM = 'socketio:stream'


@pytest.fixture(scope='module')
def kit(tmp_path_factory):
    with local_cluster(tmp_path_factory.mktemp('emit'), 3, SMALL) as local:
        yield local


def stream_end(kit):
    """The stream's length and last entry: unchanged means nothing was added."""
    db = redis.Redis.from_url(kit.redis_url)
    last = db.xrevrange(STREAM, count=1)
    return db.xlen(STREAM), last[0][0] if last else None


def emit_cli(*args, env):
    return subprocess.run([sys.executable, '-m', 'socketio_kit.emit', *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=30, check=False, env=env)


def members_everywhere(kit, opened, room):
    for client in opened:
        assert client.call('join', {'room': room})['ok']
    assert {c.instance for c in opened} == set(kit.app_ports), 'a client on every instance'


def test_cli_reaches_every_instance_exactly_once(kit):
    room = new_room()
    with clients(kit.url, 6) as opened, clients(kit.url, 3) as outsiders:
        members_everywhere(kit, opened, room)
        proc = subprocess.run(
            [sys.executable, '-m', 'socketio_kit.emit', '--room', room, '--event', 'message',
             '{"from": "cron", "n": 1}'], cwd=ROOT, capture_output=True, text=True,
            timeout=30, check=False, env={'REDIS_URL': kit.redis_url, 'PATH': '/usr/bin'})
        assert proc.returncode == 0, proc.stderr
        for client in opened:
            assert client.drain(1, timeout=5) == [{'from': 'cron', 'n': 1}], client.instance
        time.sleep(0.5)  # a duplicate, or a stray copy, would be here by now
        assert all(c.messages.empty() for c in opened + outsiders)


def test_api_room_and_one_sid(kit):
    room = new_room()
    emitter = create_emitter(kit.redis_url)
    with clients(kit.url, 6) as opened:
        members_everywhere(kit, opened, room)
        for n in range(5):
            emitter.emit('message', {'n': n}, room=room)
        for client in opened:
            assert [m['n'] for m in client.drain(5, timeout=5)] == list(range(5))
        one = opened[-1]
        emitter.emit('message', {'just': 'you'}, to=one.welcome['sid'])
        assert one.drain(1, timeout=5) == [{'just': 'you'}]
        time.sleep(0.5)
        assert all(c.messages.empty() for c in opened)


def test_cli_refuses_a_payload_that_is_not_json(kit):
    proc = subprocess.run([sys.executable, '-m', 'socketio_kit.emit', '--room', 'r', '--event', 'e',
                           '{not json'], cwd=ROOT, capture_output=True, text=True, timeout=30,
                          check=False, env={'REDIS_URL': kit.redis_url})
    assert proc.returncode == 2 and 'not JSON' in proc.stderr


def test_cli_finds_the_native_cluster_without_redis_url(kit):
    """No REDIS_URL, no REDIS_PASSWORD_FILE: the running native cluster's
    settings (its Redis and its password) are used, and it says so."""
    room = new_room()
    with clients(kit.url, 3, everywhere=kit.app_ports) as opened:
        for client in opened:
            assert client.call('join', {'room': room})['ok']
        proc = emit_cli('--room', room, '--event', 'message', '{"from": "native"}',
                        '--native-run-dir', str(kit.run_dir), env={'PATH': '/usr/bin'})
        assert proc.returncode == 0, proc.stderr
        assert str(kit.run_dir / NATIVE_SETTINGS) in proc.stderr
        for client in opened:
            assert client.drain(1, timeout=5) == [{'from': 'native'}], client.instance


def test_cli_without_redis_url_or_cluster_says_where_it_looked(tmp_path):
    proc = emit_cli('--room', 'r', '--event', 'e', '{}', '--native-run-dir', str(tmp_path),
                    env={'PATH': '/usr/bin'})
    assert proc.returncode == 2
    line, = proc.stderr.splitlines()
    assert 'REDIS_URL is not set' in line and str(tmp_path / NATIVE_SETTINGS) in line


@pytest.mark.parametrize('payload, why', [
    ('NaN', 'NaN'), ('{"a": [Infinity]}', 'Infinity'), ('-Infinity', 'Infinity'),
    ('1e999', 'does not fit in a double'),
    ('{"n": 36028797018963968}', 'does not fit in a JavaScript number'),
    ('{"data": "%s"}' % ('x' * (CAP + 100)), f'ADAPTER_MAX_MESSAGE_BYTES={CAP}'),
])
def test_cli_refuses_what_the_instances_would_refuse(kit, payload, why):
    """One line, exit 2, and nothing in the stream; the cap is the running
    cluster's (found without REDIS_URL)."""
    before = stream_end(kit)
    proc = emit_cli('--room', new_room(), '--event', 'message',
                    '--native-run-dir', str(kit.run_dir), '--', payload, env={'PATH': '/usr/bin'})
    assert proc.returncode == 2, proc.stderr
    line, = proc.stderr.splitlines()
    assert line.startswith('emit: ') and why in line, line
    assert stream_end(kit) == before


def test_api_refuses_over_the_cap_and_what_is_not_strict_json(kit):
    emitter = create_emitter(kit.redis_url, max_message_bytes=CAP)
    before = stream_end(kit)
    with pytest.raises(MessageTooLarge, match=f'ADAPTER_MAX_MESSAGE_BYTES={CAP}'):
        emitter.emit('message', {'data': 'x' * CAP}, room=new_room())
    for data in (float('nan'), float('inf'), 2 ** 55):
        with pytest.raises(ValueError):
            emitter.emit('message', {'n': data}, room=new_room())
    assert stream_end(kit) == before


def test_server_side_emit_over_the_cap_is_refused(kit):
    """A client message within MAX_PAYLOAD_BYTES (2,800 bytes of UTF-8) that
    the instance re-encodes for the stream as 8,400 (each é as \\u00e9): the
    broadcast is refused with the reason in its ack, no entry reaches the
    stream, and no member anywhere gets it."""
    room = new_room()
    with clients(kit.url, 3, everywhere=kit.app_ports) as members:
        for member in members:
            assert member.call('join', {'room': room})['ok']
        sender = WebSocketSession(kit.url)
        try:
            sender.connect()
            assert sender.call('join', {'room': room})['ok']
            before = stream_end(kit)
            sender.ws.send('4299' + json.dumps(['broadcast', {'room': room, 'data': 'é' * 1400}],
                                               ensure_ascii=False))
            ack = None
            for _ in range(100):
                message = sender.ws.recv(5)
                if message.startswith('4399['):
                    ack = json.loads(message[4:])[0]
                    break
            assert ack is not None and not ack['ok'], ack
            assert f'ADAPTER_MAX_MESSAGE_BYTES={CAP}' in ack['error'], ack
            assert stream_end(kit) == before
            for member in members:
                assert member.drain(1, timeout=1) == [], member.instance
        finally:
            sender.close()
