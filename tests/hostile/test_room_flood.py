"""Many connections from one address flooding one room: together they get
one address's bandwidth (RATE_ADDRESS_BYTES_PER_SECOND, default 2 MB/s, burst
2 MB), not eight clients' worth, so a member that reads at a reasonable pace
is not cut off as a slow consumer by one address's flood."""
import json
import socket
import threading
import time

from tests.hostile.conftest import frame
from tests.support import WebSocketSession

FLOODERS = 8
SIZE = 50_000                 # bytes of data per broadcast
PER_FLOODER = 200             # 10 MB each, far past every bucket
ADDRESS_RATE = ADDRESS_BURST = 2_000_000    # the defaults (socketio_kit/config/security.py)
CLIENT_BURST = 2_000_000      # RATE_BYTES_BURST's default


def _flood(ws: WebSocketSession, room: str):
    body = '42' + json.dumps(['broadcast', {'room': room, 'data': 'x' * SIZE}])
    for _ in range(PER_FLOODER):
        try:
            ws.ws.send(body)
        except OSError:       # disconnected for sustained abuse: done
            return


def test_many_connections_from_one_address_share_its_budget(attack):
    room = f'flood-{time.monotonic_ns()}'
    member = attack.session('app2')           # on another instance: via Redis
    assert member.call('join', {'room': room})['ok']
    flooders = [attack.session('app1') for _ in range(FLOODERS)]
    for ws in flooders:
        assert ws.call('join', {'room': room})['ok']
    started = time.monotonic()
    threads = [threading.Thread(target=_flood, args=(ws, room), daemon=True)
               for ws in flooders]
    for thread in threads:
        thread.start()
    received, last = 0, started
    deadline = started + 15
    while time.monotonic() < deadline:
        try:
            text = member.ws.recv(2)
        except (socket.timeout, TimeoutError):
            break                               # two quiet seconds: over
        if text.startswith('42["message"'):
            received += 1
            last = time.monotonic()
    for thread in threads:
        thread.join(10)
    for ws in flooders:
        ws.close()
    elapsed = last - started
    allowed = (ADDRESS_BURST + ADDRESS_RATE * elapsed) / SIZE + 1
    print(f'[{FLOODERS} connections x {PER_FLOODER} x {SIZE // 1000} kB: the member '
          f'got {received} broadcasts in {elapsed:.1f}s, at most {allowed:.0f} '
          f'allowed; {FLOODERS} separate clients could burst '
          f'{FLOODERS * CLIENT_BURST // SIZE}]', end=' ')
    assert received >= ADDRESS_BURST // SIZE // 2, received   # not all refused
    assert received <= allowed, (received, allowed)
    # The member kept up and is still connected.
    assert member.call('whoami', {})['instance'] == 'app2'
    member.close()


def test_many_connections_from_one_address_share_its_event_budget(attack):
    """30 connections each within its own 100 events/s burst (150 `whoami`
    each, 4,500 in all): the address's 1000/s, burst 2000, decides, so six
    hundred such connections cannot keep an instance busy for everyone."""
    sessions = [attack.session('app3') for _ in range(30)]
    started = time.monotonic()
    for ws in sessions:
        ws.ws.sock.sendall(b''.join(
            frame(f'42{100 + i}["whoami",{{}}]'.encode()) for i in range(150)))
    ok = refused = 0
    for ws in sessions:
        for _ in range(150):
            text = ws.ws.recv(10)
            while not text.startswith('43'):
                text = ws.ws.recv(10)
            ack = json.loads(text[text.index('['):])[0]
            ok += bool(ack.get('instance'))
            refused += 'RATE_ADDRESS_EVENTS_PER_SECOND' in ack.get('error', '')
    elapsed = time.monotonic() - started
    for ws in sessions:
        ws.close()
    print(f'[30 connections x 150 events: {ok} answered, {refused} refused in '
          f'{elapsed:.1f}s]', end=' ')
    assert ok + refused == 4500
    assert 2000 <= ok <= 2000 + 1000 * elapsed + 50, (ok, elapsed)
