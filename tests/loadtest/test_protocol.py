"""Engine.IO / Socket.IO framing as pure functions (no network)."""
import pytest

from loadtest import protocol as p
from loadtest.stats import Histogram, SeqTracker, percentiles


def test_event_with_ack_id():
    assert p.encode_event('join', {'room': 'r'}, 7) == '427["join",{"room":"r"}]'


def test_event_without_data_or_ack():
    assert p.encode_event('whoami') == '42["whoami"]'


def test_connect_default_and_custom_namespace():
    assert p.encode_connect() == '40'
    assert p.encode_connect({'token': 1}, '/admin') == '40/admin,{"token":1}'


def test_decode_ack_with_namespace_and_id():
    pkt = p.decode_sio('3/chat,12[{"ok":true}]')
    assert (pkt.type, pkt.namespace, pkt.id, pkt.data) == ('3', '/chat', 12, [{'ok': True}])


def test_decode_connect_reply():
    pkt = p.decode_sio('0{"sid":"abc"}')
    assert pkt.type == p.SIO_CONNECT and pkt.data == {'sid': 'abc'} and pkt.id is None


def test_decode_event_roundtrip_unicode():
    text = p.encode_event('message', {'data': 'héllo ✓'}, 3)
    pkt = p.decode_sio(text[1:])
    assert pkt.id == 3 and pkt.data == ['message', {'data': 'héllo ✓'}]


def test_binary_packets_are_refused():
    with pytest.raises(p.ProtocolError):
        p.decode_sio('51-["x",{"_placeholder":true,"num":0}]')


def test_bad_json_is_a_protocol_error():
    with pytest.raises(p.ProtocolError):
        p.decode_sio('2["x",')


def test_open_packet():
    assert p.decode_open('0{"sid":"a","upgrades":[],"pingInterval":25000}')['sid'] == 'a'
    with pytest.raises(p.ProtocolError):
        p.decode_open('40')


def test_polling_payload_split_and_join():
    packets = ['40{"sid":"x"}', '2', '42["a"]']
    assert p.decode_payload(p.encode_payload(packets)) == packets
    assert p.decode_payload('') == []


def test_seq_tracker_gaps_late_and_duplicates():
    t = SeqTracker()
    assert [t.add(s) for s in (0, 1, 4, 2, 2, 5)] == ['ok', 'ok', 'ok', 'late', 'dup', 'ok']
    # sent 0..7, 6 never acked: received 0,1,2,4,5 -> missing 3 and 7
    assert t.received_of(8, {6}) == 5


def test_histogram_percentiles_within_one_percent_and_merge():
    a, b = Histogram(), Histogram()
    for i in range(1, 1001):
        (a if i % 2 else b).add(i / 1000)
    h = Histogram.merged([a, b])
    assert h.count == 1000
    assert h.percentile(50) == pytest.approx(0.5, rel=0.011)
    assert h.percentile(99) == pytest.approx(0.99, rel=0.011)
    assert h.max == 1.0
    assert Histogram.from_dict(h.to_dict()).percentile(90) == h.percentile(90)
    assert percentiles([0.1, 0.2, 0.3])['max'] == 300.0
