"""Zero message loss, the parts that need no network: the outbox's limits,
stream offsets, which stream entries a recovering session is owed, the new
settings, the load test's side of the recovery protocol, and the app's session
data in a recoverable record (kept, refused, put back)."""
import json
import logging
from types import SimpleNamespace

import pytest

from loadtest.recovering import SessionRecovery
from socketio_kit.cluster import entries
from socketio_kit.cluster.outbox import Outbox
from socketio_kit.config import ConfigError, load_settings
from socketio_kit.recovery import Recovery, replay
from socketio_kit.recovery.sessions import Session


def test_outbox_drops_the_oldest_past_its_size_and_counts_them():
    box = Outbox(max_messages=3, max_age=60)
    for i in range(5):
        box.put(f'm{i}')
    last, batch = box.peek(10)
    assert batch == ['m2', 'm3', 'm4']
    assert box.stats['outbox_dropped'] == 2
    box.put('m5')                     # arrives while the batch is being written
    box.done(last)
    assert box.peek(10)[1] == ['m5']  # only what was written left the outbox


def test_outbox_expires_entries_older_than_its_age(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr('socketio_kit.cluster.outbox.time.monotonic', lambda: now[0])
    box = Outbox(max_messages=100, max_age=10)
    box.put('old')
    now[0] += 11
    box.put('new')
    assert box.peek(10)[1] == ['new']
    assert box.stats['outbox_dropped'] == 1


def test_offsets_compare_as_stream_ids_not_strings():
    assert entries.parse_offset('1700000000000-12') == (1700000000000, 12)
    assert entries.after('5-10', '5-9')          # '5-10' < '5-9' as strings
    for bad in (None, '', 'abc', '1-', '-1', '1-2-3', 'x' * 50, 12):
        assert entries.parse_offset(bad) is None


@pytest.mark.parametrize('msg, owed', [
    ({'room': 'lobby'}, True),
    ({'room': 'other'}, False),
    ({'room': None}, True),                           # the whole namespace
    ({'room': ['other', 'lobby']}, True),
    ({'room': 'app1.sid'}, True),                     # to= this sid
    ({'room': 'lobby', 'skip_sid': 'app1.sid'}, False),
    ({'room': 'lobby', 'skip_sid': ['x', 'app1.sid']}, False),
    ({'room': 'lobby', 'namespace': '/chat'}, False),
    ({'room': 'lobby', 'callback': ['r', '/', 1]}, False),  # acks are not replayed
    ({'room': 'lobby', 'method': 'close_room'}, False),
])
def test_which_entries_a_recovering_session_is_owed(msg, owed):
    entry = {'method': 'emit', 'namespace': '/', 'callback': None, **msg}
    assert replay.addressed(entry, '/', 'app1.sid', {'lobby', 'app1.sid'}) is owed


def test_binary_arguments_survive_the_stream():
    data, binary = entries.message_data([{'a': 1}, b'\x00\xff'])
    assert binary
    assert entries.event_args({'data': data, 'binary': True}) == [{'a': 1}, b'\x00\xff']


def test_recovery_settings():
    base = {'INSTANCE_NAME': 'app1'}
    s = load_settings(base)
    assert (s.streams.recovery_window, s.streams.max_age, s.streams.maxlen) == (120, 600, 100_000)
    assert load_settings({**base, "RECOVERY_WINDOW": "0"}).streams.recovery_window == 0
    with pytest.raises(ConfigError, match='STREAM_MAX_AGE=100 .*at least RECOVERY_WINDOW'):
        load_settings({**base, 'RECOVERY_WINDOW': '300', 'STREAM_MAX_AGE': '100'})
    with pytest.raises(ConfigError, match='OUTBOX_MAX_MESSAGES'):
        load_settings({**base, 'OUTBOX_MAX_MESSAGES': '0'})


def test_load_test_client_recovers_like_socket_io_client():
    session = SessionRecovery()
    assert session.payload() is None                    # first connect: no session
    session.on_connect({'sid': 's1', 'pid': 'P1'}, reconnect=False)
    session.on_broadcast(b'42["message",{"room":"r"},"1700-3"]')
    assert session.payload() == {'pid': 'P1', 'offset': '1700-3'}
    session.on_connect({'sid': 's1', 'pid': 'P1'}, reconnect=True)
    assert session.recovered and session.replaying
    session.on_broadcast(b'42["message",{"room":"r"},"1700-4"]')
    assert session.replayed == 1 and session.recoveries == 1
    session.on_connect({'sid': 's2', 'pid': 'P2'}, reconnect=True)
    assert not session.recovered and session.new_sessions == 1
    assert SessionRecovery(enabled=False).payload() is None


class _FakeRedis:
    """register_script only: each script call is recorded."""

    def __init__(self):
        self.calls = []

    def register_script(self, text):
        def run(keys, args, client=None):
            self.calls.append((keys, args))
            return 1
        return run


class _FakeEio:
    def __init__(self):
        self.sessions = {'e1': {}}

    def get_session(self, eio_sid):
        return self.sessions[eio_sid]


def _recovery(max_data=100):
    manager = SimpleNamespace(redis=_FakeRedis(), channel='k', host_id='h', metrics=None,
                              stats={}, epoch='E', last_id='1-0', redis_up=True)
    recovery = Recovery(SimpleNamespace(eio=_FakeEio()), manager, 5, max_data, 2 ** 21)
    recovery.sessions['s1'] = Session('P', '/', 'E', '1-0')
    return recovery, manager.redis.calls


def test_saved_session_data_goes_into_the_record_once_per_change():
    recovery, calls = _recovery()
    recovery.saved('s1', '/', {'name': 'ada', 'n': [1, 2]})
    recovery.saved('s1', '/', {'name': 'ada', 'n': [1, 2]})   # unchanged: no write
    recovery.saved('s1', '/admin', {'other': 'namespace'})     # not the session's
    recovery.saved('s2', '/', {'not': 'recoverable'})
    assert len(calls) == 1
    assert calls[0][0] == ['k:session:P'] and calls[0][1][7] == '{"name":"ada","n":[1,2]}'


@pytest.mark.parametrize('value, reason', [
    ({'tags': {'a', 'b'}}, 'not JSON'),
    ({'x': float('nan')}, 'not JSON'),
    ({'big': 'x' * 200}, 'too large'),
])
def test_session_data_that_cannot_be_kept_is_refused_in_one_line(caplog, value, reason):
    recovery, calls = _recovery(max_data=100)
    recovery.saved('s1', '/', {'ok': 1})
    with caplog.at_level(logging.WARNING, logger='socketio_kit.recovery'):
        recovery.saved('s1', '/', value)     # never raises into the app
    assert [r.reason for r in caplog.records] == [reason]
    assert 'MAX_PAYLOAD_BYTES=100' in caplog.records[0].getMessage()
    # The record then holds no data: a recovery restores none, not an older one.
    assert [args[7] for _, args in calls] == ['{"ok":1}', '']


def test_a_recovery_puts_the_session_data_back_before_the_handlers():
    recovery, _ = _recovery()
    recovery.data.put_back('e1', '/', '{"remembered":"x"}')
    recovery.data.put_back('gone', '/', '{"remembered":"y"}')   # no error
    assert recovery.server.eio.sessions['e1'] == {'/': {'remembered': 'x'}}
    assert recovery.data.snapshot('e1', '/', 's1') == '{"remembered":"x"}'
    assert recovery.data.snapshot('e1', '/admin', 's1') == ''


class _Stream:
    """XRANGE over a list of (id, message), as redis-py returns it."""

    def __init__(self, messages):
        self.entries = [(f'{i + 1}-0'.encode(), {b'm': json.dumps(m).encode()})
                        for i, m in enumerate(messages)]

    def xrange(self, stream, min, max, count):
        after = entries.parse_offset(min.lstrip('('))
        return [e for e in self.entries
                if entries.parse_offset(e[0].decode()) > after][:count]


def test_a_replay_is_bounded_in_bytes_owed_and_read_and_lets_others_run():
    owed = {'method': 'emit', 'event': 'message', 'room': 'r', 'data': ['x' * 1000]}
    other = {**owed, 'room': 'elsewhere'}
    stream = _Stream([owed, other] * 150)
    pauses = []
    got = replay.missed(stream, 's', '/', 'sid1', ['r'], '0-0', max_bytes=10 ** 6,
                        pause=lambda: pauses.append(1))
    assert len(got) == 150 and len(pauses) == 300 // replay.PAGE
    # More owed than the client may have waiting: a new session instead.
    with pytest.raises(replay.TooMuch, match='MAX_CLIENT_BUFFER_BYTES'):
        replay.missed(stream, 's', '/', 'sid1', ['r'], '0-0', max_bytes=50_000)
    # Its address's reading budget spent (entries of other rooms count too).
    scan = replay.ScanBudget().bucket('10.0.0.1')
    scan.tokens = 100_000
    scan.rate = 0
    with pytest.raises(replay.TooMuch, match='SCAN_BYTES'):
        replay.missed(stream, 's', '/', 'sid1', ['r'], '0-0', scan=scan)


def test_an_emit_written_twice_is_read_once():
    from socketio_kit.cluster.dedupe import WINDOW, SeenEmits
    seen = SeenEmits()
    first = {'method': 'emit', 'host_id': 'h1', 'n': 7}
    assert seen.first(first) and not seen.first(dict(first))
    assert seen.first({**first, 'host_id': 'h2'})        # another instance
    assert seen.first({'method': 'emit', 'host_id': 'h1'})  # no serial
    for n in range(8, 8 + WINDOW):
        seen.first({**first, 'n': n})
    assert seen.first(first)                                # long forgotten
    # A replay reads the stream's second copy once too.
    owed = {'method': 'emit', 'event': 'message', 'room': 'r', 'data': [1],
            'host_id': 'h1', 'n': 1}
    got = replay.missed(_Stream([owed, owed, {**owed, 'n': 2}]), 's', '/', 'x', ['r'], '0-0')
    assert [m['n'] for _, m in got] == [1, 2]
