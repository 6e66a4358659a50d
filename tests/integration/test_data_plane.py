"""The WebSocket data plane (socketio_kit/transport/engine.py, connection.py,
socketio_kit/cluster/fanout.py)
against real instances: the compression policy, frames compressed once above
the threshold, the real socket.io-client, the slow-consumer cap, coalescing,
and every emit form the kit's Redis Streams manager carries across instances.
"""
import json
import shutil
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import redis

from socketio_kit.cluster.streams import StreamsManager
from tests.support import (
    ALLOWED_ORIGIN,
    BROWSER_OFFER,
    Client,
    WebSocketSession,
    local_cluster,
    needs_socketio_client,
    offered,
)

ROOT = Path(__file__).resolve().parents[2]
NODE_CLIENT = ROOT / 'tests' / 'node' / 'broadcast.mjs'
BUFFER_CAP = 262144
# The per-client rate limits are lifted: these tests push one client's
# broadcasts as fast as the data plane takes them.
ON = {'WS_COMPRESSION': 'on', 'MAX_PAYLOAD_BYTES': '100000',
      'MAX_CLIENT_BUFFER_BYTES': str(BUFFER_CAP),
      'RATE_EVENTS_PER_SECOND': '1000000', 'RATE_EVENTS_BURST': '1000000',
      'RATE_BYTES_PER_SECOND': '1000000000',
      'RATE_BYTES_BURST': '1000000000', 'RATE_ADDRESS_BYTES_PER_SECOND': '0',
      'RATE_ADDRESS_EVENTS_PER_SECOND': '0'}


@pytest.fixture(scope='module', params=['eventlet', 'gevent'])
def plane(request, tmp_path_factory):
    """Two instances with WS_COMPRESSION=on and a small client buffer cap."""
    run_dir = tmp_path_factory.mktemp(f'plane-{request.param}')
    with local_cluster(run_dir, 2, {**ON, 'WORKER_CLASS': request.param}) as lc:
        yield lc


def _direct(lc, name='app1'):
    return f'http://127.0.0.1:{lc.app_ports[name]}'


def _worker(lc, name='app1') -> psutil.Process:
    master = psutil.Process(lc.processes.pid(name))
    return master.children()[0]


# -- the compression policy ------------------------------------------------------
def test_compression_is_declined_by_default(cluster):
    """A browser-like offer gets no Sec-WebSocket-Extensions back, through the
    balancer and (native) from every instance directly."""
    assert offered(cluster.url) == []
    local = getattr(cluster.control, 'local', None)  # native: each instance
    for port in (local.app_ports.values() if local else ()):
        assert offered(f'http://127.0.0.1:{port}') == []


@pytest.mark.only_target('local')
def test_compression_is_accepted_when_on(plane):
    answer = ('permessage-deflate; server_no_context_takeover; '
              'client_no_context_takeover')
    assert offered(plane.url) == [answer]
    assert offered(_direct(plane)) == [answer]
    assert offered(plane.url, 'permessage-deflate; no_such_param') == []


@pytest.mark.only_target('local')
def test_frames_above_the_threshold_are_compressed_once(plane):
    member = WebSocketSession(plane.url, extensions=BROWSER_OFFER)
    sender = WebSocketSession(plane.url, extensions=BROWSER_OFFER)
    try:
        member.connect()
        sender.connect()
        assert member.call('join', {'room': 'deflate'})['ok']
        assert sender.call('join', {'room': 'deflate'})['ok']
        big, small = 'z' * 5000, 'tiny'
        for data in (big, small):
            sender.emit('broadcast', {'room': 'deflate', 'data': data},
                        compress=True)
        (big_rsv1, big_msg), (small_rsv1, small_msg) = member.messages(2)
        assert big_msg['data'] == big and big_rsv1
        assert small_msg['data'] == small and not small_rsv1
    finally:
        member.close()
        sender.close()


# -- the real socket.io-client -----------------------------------------------------
def _node_client(url, transports, size=5000):
    needs_socketio_client()
    out = subprocess.run(['node', str(NODE_CLIENT), url, ALLOWED_ORIGIN,
                          transports, str(size)],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize('transports', ['websocket', 'polling,websocket'])
def test_socketio_client_broadcast_without_compression(cluster, transports):
    seen = _node_client(cluster.url, transports)
    assert seen['ok'] and seen['transport'] == 'websocket', seen
    assert not seen['extensions'], seen


@pytest.mark.only_target('local')
@pytest.mark.parametrize('transports', ['websocket', 'polling,websocket'])
def test_socketio_client_broadcast_with_compression(plane, transports):
    seen = _node_client(plane.url, transports)
    assert seen['ok'] and seen['transport'] == 'websocket', seen
    assert 'permessage-deflate' in seen['extensions'], seen


# -- a client that stops reading ----------------------------------------------------
@pytest.mark.only_target('local')
def test_slow_consumer_is_cut_off_and_the_others_get_everything(plane):
    """A member that never reads is disconnected once MAX_CLIENT_BUFFER_BYTES
    wait for it; the instance's memory stays bounded and a reading member
    on the same instance receives every message, in order."""
    url = _direct(plane)
    worker = _worker(plane)
    slow, fast, sender = (WebSocketSession(url) for _ in range(3))
    count, size = 400, 25_000
    try:
        for ws in (slow, fast, sender):
            ws.connect()
        assert slow.call('join', {'room': 'slow'})['ok']
        assert fast.call('join', {'room': 'slow'})['ok']
        assert sender.call('join', {'room': 'slow'})['ok']
        rss_before = worker.memory_info().rss
        got = []
        for seq in range(count):  # the fast member reads as it goes
            sender.emit('broadcast', {'room': 'slow',
                                      'data': {'q': seq, 'pad': 'p' * size}})
            got += [msg['data']['q'] for _, msg in fast.messages(1)]
            sender.messages(1)  # a member too (only members may broadcast)
        assert got == list(range(count))
        rss_growth = worker.memory_info().rss - rss_before
        # Now the slow member reads: what the kernel buffered, then the end.
        with pytest.raises(ConnectionError):
            slow.messages(count)
        assert rss_growth < 40 * 2**20, f'worker RSS grew {rss_growth} bytes'
    finally:
        for ws in (slow, fast, sender):
            ws.close()


# -- coalescing ----------------------------------------------------------------------
@pytest.mark.only_target('local')
def test_frames_of_one_tick_leave_in_one_send(plane):
    """20 broadcasts that arrive from the Redis stream together reach a member in one
    send() (counted by strace on the worker), not 20."""
    if shutil.which('strace') is None:
        pytest.skip('needs strace (apt-get install strace)')
    member = WebSocketSession(_direct(plane))
    trace = plane.run_dir / 'strace.out'
    tracer = None
    try:
        member.connect()
        assert member.call('join', {'room': 'tick'})['ok']
        tracer = subprocess.Popen(
            ['strace', '-f', '-xx', '-s', '8', '-e', 'trace=sendto,sendmsg',
             '-o', str(trace), '-p', str(_worker(plane).pid)],
            stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # strace attached
        pipe = redis.Redis.from_url(plane.redis_url).pipeline(transaction=True)
        for seq in range(20):
            pipe.xadd('socketio:stream', {'m': json.dumps({
                'method': 'emit', 'event': 'message', 'namespace': '/',
                'data': [{'room': 'tick', 'data': seq}], 'binary': False,
                'room': 'tick', 'skip_sid': None, 'callback': None,
                'host_id': 'tests'})})
        pipe.execute()
        got = [msg['data'] for _, msg in member.messages(20)]
        assert got == list(range(20))
        time.sleep(0.2)
    finally:
        if tracer:
            tracer.terminate()
            tracer.wait(10)
        member.close()
    frames = [line for line in trace.read_text().splitlines()
              if '"\\x81' in line]
    assert 1 <= len(frames) <= 3, frames


# -- every emit form, across instances ----------------------------------------------
@pytest.mark.only_target('local')
def test_every_emit_form_crosses_instances(plane):
    """What a backend can emit through the kit's Redis Streams manager reaches
    the right members on every instance, exactly once."""
    members = []
    try:
        while {m.instance for m in members} != {'app1', 'app2'} or len(members) < 4:
            assert len(members) < 20, 'clients never spread over both instances'
            members.append(Client(plane.url).connect())
        for m in members:
            assert m.call('join', {'room': 'forms'})['ok']
        # The kit's emitter API for backend processes (socketio_kit/cluster/streams.py): the
        # same stream the instances read, no Socket.IO server needed.
        emitter = StreamsManager(plane.redis_url, write_only=True)
        first, second = members[0], members[1]

        emitter.emit('message', {'form': 'room'}, room='forms')
        emitter.emit('message', {'form': 'skip'}, room='forms',
                     skip_sid=first.sio.get_sid())
        emitter.emit('message', {'form': 'to'}, to=second.sio.get_sid())
        emitter.emit('message', {'form': 'other-namespace'}, namespace='/none')
        seen = {id(m): [msg['form'] for msg in m.drain(4, timeout=3)]
                for m in members}
        assert seen[id(first)] == ['room']
        assert seen[id(second)] == ['room', 'skip', 'to']
        for m in members[2:]:
            assert seen[id(m)] == ['room', 'skip']

        emitter.close_room('forms')
        emitter.emit('message', {'form': 'after-close'}, room='forms')
        assert all(m.drain(1, timeout=1) == [] for m in members)

        # Disconnecting a sid on another instance, through the stream.
        emitter.disconnect(second.sio.get_sid())
        deadline = time.monotonic() + 5
        while second.sio.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not second.sio.connected
        assert first.sio.connected
    finally:
        for m in members:
            m.close()
