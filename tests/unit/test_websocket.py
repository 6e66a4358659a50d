"""The WebSocket framing and the permessage-deflate negotiation
(socketio_kit/transport/websocket.py)."""
import os
import zlib

import pytest

from socketio_kit.transport.websocket import (
    DEFLATE_TAIL,
    OP_BINARY,
    OP_TEXT,
    HandshakeError,
    Outgoing,
    deflate,
    frame,
    handshake_response,
    negotiate_deflate,
    unmask,
)

BOTH = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover'


@pytest.mark.parametrize('offer, answer', [
    ('permessage-deflate; client_max_window_bits', (BOTH, 15)),
    ('permessage-deflate', (BOTH, 15)),
    ('x-webkit-deflate-frame, permessage-deflate', (BOTH, 15)),
    ('permessage-deflate; server_max_window_bits=10',
     (BOTH + '; server_max_window_bits=10', 10)),
    # Declined: an 8-bit window (zlib cannot), bad values, unknown or repeated
    # parameters; the next acceptable offer wins.
    ('permessage-deflate; server_max_window_bits=8', None),
    ('permessage-deflate; client_max_window_bits=7', None),
    ('permessage-deflate; server_no_context_takeover=1', None),
    ('permessage-deflate; no_such_param', None),
    ('permessage-deflate; client_max_window_bits; client_max_window_bits', None),
    ('permessage-deflate; server_max_window_bits=8, permessage-deflate', (BOTH, 15)),
    ('', None),
    (None, None),
])
def test_negotiation(offer, answer):
    assert negotiate_deflate(offer) == answer


def _environ(**extra):
    return {'HTTP_SEC_WEBSOCKET_KEY': 'dGhlIHNhbXBsZSBub25jZQ==',
            'HTTP_SEC_WEBSOCKET_VERSION': '13',
            'HTTP_SEC_WEBSOCKET_EXTENSIONS': 'permessage-deflate', **extra}


def test_handshake_answers_the_key_and_follows_the_policy():
    off, deflate_off = handshake_response(_environ(), compression=False)
    assert b'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=' in off
    assert b'Sec-WebSocket-Extensions' not in off and deflate_off is None
    on, deflate_on = handshake_response(_environ(), compression=True)
    assert b'Sec-WebSocket-Extensions: ' + BOTH.encode() in on
    assert deflate_on == (BOTH, 15)


@pytest.mark.parametrize('extra', [{'HTTP_SEC_WEBSOCKET_VERSION': '8'},
                                   {'HTTP_SEC_WEBSOCKET_KEY': 'short'}])
def test_bad_handshakes_are_refused(extra):
    with pytest.raises(HandshakeError):
        handshake_response(_environ(**extra), compression=False)


@pytest.mark.parametrize('size, header_len', [(0, 2), (125, 2), (126, 4), (65535, 4),
                                              (65536, 10)])
def test_frame_lengths(size, header_len):
    data = frame(b'x' * size, OP_BINARY)
    assert len(data) == size + header_len and data[0] == 0x82


def test_unmask_is_its_own_inverse():
    mask, data = os.urandom(4), os.urandom(1001)
    masked = unmask(data, mask)
    assert masked == bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    assert unmask(masked, mask) == data


def test_outgoing_frames_once_per_variant():
    out = Outgoing('4' + 'y' * 2000, threshold=1024)
    assert out.frame_for(0) is out.frame_for(0)
    deflated = out.frame_for(15)
    assert deflated is out.frame_for(15) and deflated[0] == 0xC1  # FIN+RSV1+text
    assert deflated[1] < 126  # compresses well below 126 bytes: a 2-byte header
    body = deflated[2:]
    assert zlib.decompressobj(-15).decompress(body + DEFLATE_TAIL) == out.payload
    small = Outgoing('4hi', threshold=1024)
    assert small.frame_for(15) == frame(b'4hi', OP_TEXT)  # under the threshold


def test_deflate_is_the_same_bytes_every_time():
    assert deflate(b'abc' * 100, 15) == deflate(b'abc' * 100, 15)


def test_close_frames_are_read_as_rfc_6455_says():
    """Autobahn section 7: the code is echoed; a one-byte payload, a code no
    endpoint may send and a reason that is not UTF-8 are protocol errors."""
    import struct

    from socketio_kit.transport.websocket import ProtocolError, close_code
    assert close_code(b'') == 1000
    for code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999):
        assert close_code(struct.pack('!H', code) + b'fine, ok') == code
    for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535):
        with pytest.raises(ProtocolError) as refused:
            close_code(struct.pack('!H', code))
        assert refused.value.code == 1002, code
    with pytest.raises(ProtocolError) as refused:
        close_code(b'\x03')
    assert refused.value.code == 1002
    with pytest.raises(ProtocolError) as refused:
        # Autobahn 7.5.1: valid UTF-8, then a surrogate (ED A0 80).
        close_code(struct.pack('!H', 1000) + 'κόσμε'.encode() + b'\xed\xa0\x80')
    assert refused.value.code == 1007
