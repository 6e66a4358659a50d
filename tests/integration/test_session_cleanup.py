"""Sessions the server closes while it writes to them, against a real instance
(redis-server, gunicorn): a long-polling client over MAX_CLIENT_BUFFER_BYTES,
and one whose ping timed out while a broadcast reached it. Either way the
session is gone at once (its next request is a plain 400, an unknown
session) and the instance logs no traceback."""
import json
import time

import pytest

from socketio_kit.emit import create_emitter
from tests.support import PollingSession, http_request, local_cluster, new_room

# Private native clusters: under --target compose these are skipped.
pytestmark = pytest.mark.only_target('local')

PING = 2  # PING_INTERVAL and PING_TIMEOUT, seconds
SMALL = {'MAX_CLIENT_BUFFER_BYTES': '65536', 'MAX_PAYLOAD_BYTES': '32768',
         'PING_INTERVAL': str(PING), 'PING_TIMEOUT': str(PING)}


@pytest.fixture(scope='module')
def kit(tmp_path_factory):
    """One instance, so the lazy client is the only one in '/' there."""
    with local_cluster(tmp_path_factory.mktemp('cleanup'), 1, SMALL) as local:
        yield local


def lazy_member(kit, room: str) -> PollingSession:
    """A long-polling client, straight on the instance, in room; it polls
    no more after this."""
    session = PollingSession(f'http://127.0.0.1:{kit.app_ports["app1"]}')
    session.connect()
    session.post('420' + json.dumps(['join', {'room': room}]))
    assert any(p.startswith('430') for p in session.get())
    return session


def next_post_status(session: PollingSession) -> int:
    resp = http_request(session.url, 'POST', session.query,
                        {**session.headers, 'Content-Type': 'text/plain;charset=UTF-8'},
                        b'42["whoami",{}]')
    return resp.status


def assert_no_traceback(kit):
    log = kit.processes.log_path('app1').read_text(errors='replace')
    assert 'Traceback' not in log and 'KeyError' not in log, log[-3000:]


def test_polling_client_over_its_buffer_is_gone(kit):
    room = new_room()
    lazy = lazy_member(kit, room)
    emitter = create_emitter(kit.redis_url)
    for _ in range(5):  # 100 kB for a client allowed 64 kB
        emitter.emit('message', {'data': 'x' * 20_000}, room=room)
    time.sleep(0.5)
    assert next_post_status(lazy) == 400
    assert_no_traceback(kit)


def test_ping_timeout_found_by_a_broadcast_is_quiet(kit):
    """The client answers no ping; broadcasts keep reaching it, and the one
    that finds the ping timed out closes the session while the instance
    writes to it, the last member of '/' there."""
    room = new_room()
    lazy = lazy_member(kit, room)
    emitter = create_emitter(kit.redis_url)
    deadline = time.monotonic() + 3 * PING + 1  # ping due, unanswered, then some
    while time.monotonic() < deadline:
        emitter.emit('message', {'n': 1}, room=room)
        time.sleep(0.02)
    assert next_post_status(lazy) == 400
    assert_no_traceback(kit)
