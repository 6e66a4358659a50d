"""A session that closes while the server writes to it, without a network:
the broadcast ends as a no-op for it, and the session leaves the table."""
import time

from socketio_kit.cluster.fanout import FanoutManager
from socketio_kit.config import load_settings
from socketio_kit.server import Server
from socketio_kit.transport.engine import KitSocket


def polling_member(**env):
    """A server on a local manager (no Redis) with one long-polling client,
    the only one in namespace '/'; returns (server, its Engine.IO session)."""
    settings = load_settings({'INSTANCE_NAME': 'app1', **env})
    sio = Server(settings=settings, client_manager=FanoutManager())
    sio.manager_initialized = True      # a local manager: nothing to start
    sock = KitSocket(sio.eio, sio.eio.generate_id())
    sock.connected = True
    sio.eio.sockets[sock.sid] = sock
    sio._handle_eio_connect(sock.sid, {})
    sio._handle_connect(sock.sid, '/', None)
    sock.poll()                         # the CONNECT reply
    assert '/' in sio.manager.rooms
    return sio, sock


def test_emit_to_a_member_whose_ping_timed_out_is_a_no_op(caplog):
    """The write finds the ping timed out and closes the session; the last
    member gone takes '/' with it, and the emit ends quietly (it raised
    KeyError: '/' after the loop)."""
    sio, sock = polling_member()
    sock.last_ping = time.time() - 10 * sio.eio.ping_timeout   # a ping unanswered
    with caplog.at_level('WARNING'):
        sio.emit('message', {'n': 1})
        sio.emit('message', {'n': 2})   # '/' has no rooms left: nothing to deliver
    assert sock.closed
    assert '/' not in sio.manager.rooms
    assert sock.sid not in sio.eio.sockets
    assert not [r for r in caplog.records if r.exc_info]


def test_polling_member_over_its_buffer_leaves_the_session_table():
    """MAX_CLIENT_BUFFER_BYTES exceeded: the session is closed and gone, so
    its next request is an unknown session (a 400), not a KeyError."""
    sio, sock = polling_member(MAX_CLIENT_BUFFER_BYTES='65536', MAX_PAYLOAD_BYTES='32768')
    for _ in range(4):
        sio.emit('message', 'x' * 20_000)
    assert sock.closed
    assert sock.sid not in sio.eio.sockets
    assert '/' not in sio.manager.rooms
