"""The emitter (socketio_kit/emit.py), from outside the cluster: its messages reach the
room's members on every instance exactly once, and no one else."""
import subprocess
import sys
import time

import pytest

from native.cluster import ROOT
from socketio_kit.emit import create_emitter
from tests.support import clients, local_cluster, new_room

# Private native clusters: under --target compose these are skipped.
pytestmark = pytest.mark.only_target('local')


@pytest.fixture(scope='module')
def kit(tmp_path_factory):
    with local_cluster(tmp_path_factory.mktemp('emit'), 3, {}) as local:
        yield local


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
