"""Strict input: malformed events, reserved names, JSON that is not JSON,
rooms that are not the sender's, and logs an attacker cannot amplify."""
import json
import time

from tests.hostile.test_freeze_and_memory import _closed
from tests.support import Client, WebSocketSession, new_room


def _ack(ws: WebSocketSession, raw: str, ack_id: int) -> dict:
    """Send a raw `42<id>...` packet; return its ack."""
    ws.ws.send(raw)
    prefix = f'43{ack_id}['
    for _ in range(50):
        text = ws.ws.recv(5)
        if text.startswith(prefix):
            return json.loads(text[len(prefix) - 1:])[0]
    raise AssertionError(f'no ack for {raw}')


def test_every_malformed_event_gets_an_error_ack(attack):
    ws = attack.session('app1')
    try:
        cases = {
            '421[7,{"room":"x"}]': 'event name must be a string',
            '422["join","lobby"]': 'payload must be an object',
            # The strict shape refuses it first; otherwise the handler's
            # signature does.
            '423["join",{"room":"a"},{"extra":1}]':
                'one payload object' if attack.strict else 'does not take 2 arguments',
            '424["broadcast",[1,2]]': 'payload must be an object',
            '425[]': 'an event is',
            '426["connect",{}]': 'reserved',
            '427["disconnect",{}]': 'reserved',
            '428["join",{"room":""}]': 'room must be a string',
        }
        for ack_id, (raw, expected) in enumerate(cases.items(), 1):
            ack = _ack(ws, raw, ack_id)
            assert ack['ok'] is False and expected in ack['error'], (raw, ack)
        # Still connected, and the connect handler never ran again.
        assert ws.call('whoami', {})['instance'] == 'app1'
    finally:
        ws.close()


def test_reserved_event_does_not_rerun_connect(attack):
    ws = attack.session('app2')
    try:
        ws.ws.send('42["connect",{"HTTP_COOKIE":"kit_session=forged"}]')
        assert ws.call('whoami', {})['instance'] == 'app2'
        ws.ws.send('42["whoami"]')  # no second `welcome` in between
        for _ in range(3):
            text = ws.ws.recv(2)
            assert 'welcome' not in text
            if text.startswith('43'):
                break
    except TimeoutError:
        pass
    finally:
        ws.close()


def test_nan_infinity_and_huge_numbers_never_reach_the_room(attack):
    """Each is a parse error that disconnects its sender; the members of the
    room receive nothing from it and stay connected."""
    room = new_room()
    member = Client(attack.direct('app3')).connect()
    try:
        assert member.call('join', {'room': room})['ok']
        for bad in ('NaN', 'Infinity', '-Infinity', '1e999999',
                    '123456789012345678901234567890'):
            ws = attack.session('app1')
            assert ws.call('join', {'room': room})['ok']
            ws.ws.send(f'42["broadcast",{{"room":"{room}","data":{bad}}}]')
            assert _closed(ws), bad
        assert member.drain(1, timeout=1) == []
        assert member.sio.connected
    finally:
        member.close()


def test_broadcast_only_into_joined_rooms(attack):
    outsider = Client(attack.direct('app1')).connect()
    member = Client(attack.direct('app2')).connect()
    room = new_room()
    try:
        assert member.call('join', {'room': room})['ok']
        ack = outsider.call('broadcast', {'room': room, 'data': 'spam'})
        assert not ack['ok'] and 'join' in ack['error']
        assert member.drain(1, timeout=1) == []
    finally:
        outsider.close()
        member.close()


def test_no_joining_another_clients_private_room(attack):
    """A room named after a sid is refused, on the victim's instance and on
    others; the victim's private messages stay private."""
    victim = Client(attack.direct('app1')).connect()
    try:
        sid = victim.welcome['sid']
        for name in ('app1', 'app2'):
            spy = Client(attack.direct(name)).connect()
            try:
                ack = spy.call('join', {'room': sid})
                assert not ack['ok'] and 'session ids' in ack['error'], ack
                ack = spy.call('broadcast', {'room': sid, 'data': 'x'})
                assert not ack['ok']
            finally:
                spy.close()
        assert victim.drain(1, timeout=0.5) == []
    finally:
        victim.close()


def test_deep_nesting_and_invalid_utf8_are_refused_quietly(attack):
    """Cases that held: each ends its own connection, nothing else."""
    ws = attack.session('app2')
    ws.ws.send('42["whoami",' + '[' * 100_000 + ']' * 100_000 + ']')
    assert _closed(ws)
    ws = attack.session('app2')
    ws.ws.sock.sendall(bytes([0x81, 0x84, 0, 0, 0, 0]) + b'42\xff\xfe')
    assert _closed(ws)


def test_malformed_packets_do_not_amplify_logs(attack):
    """500 connections each sending a 4-byte malformed packet: a few
    one-line warnings (rate-limited), no traceback."""
    before = attack.log_size('app3')
    for _ in range(500):
        ws = WebSocketSession(attack.direct('app3'))
        ws.ws.recv(5)
        ws.ws.send('4{x!')
        ws.close()
    time.sleep(0.5)
    grown = attack.log_size('app3') - before
    text = attack.log_text('app3')
    print(f'[log growth for 500 malformed packets: {grown} bytes]', end=' ')
    assert grown < 20_000, f'log grew {grown} bytes'
    assert 'Traceback' not in text


def _close_answer(attack, payload: bytes):
    """Send a close frame with `payload` on a fresh session; the code of the
    close frame the instance answers with."""
    import struct

    from tests.hostile.conftest import frame
    ws = attack.session('app3')
    try:
        ws.ws.sock.sendall(frame(payload, opcode=8))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            _, opcode, data = ws.ws.frame(deadline - time.monotonic())
            if opcode == 8:
                return struct.unpack('!H', data[:2])[0] if len(data) >= 2 else None
        raise AssertionError('no close frame')
    finally:
        ws.close()


def test_close_frames_are_validated(attack):
    """RFC 6455 (Autobahn's section 7): a valid code is echoed; a one-byte
    payload or a code no endpoint may send gets 1002, a reason that is not
    UTF-8 gets 1007."""
    assert _close_answer(attack, b'\x03\xe8bye') == 1000
    assert _close_answer(attack, b'\x0f\xa0app says bye') == 4000
    assert _close_answer(attack, b'\x03') == 1002
    for code in (0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999):
        assert _close_answer(attack, code.to_bytes(2, 'big')) == 1002, code
    assert _close_answer(attack, b'\x03\xe8\xce\xba\xed\xa0\x80') == 1007
