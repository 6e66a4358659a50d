"""permessage-deflate, the broadcast parser and the Config CLI, as pure
functions (no network)."""
import argparse
import zlib

import pytest

from loadtest import config
from loadtest.deflate import OFFER, Inflater, deflate_message, negotiated
from loadtest.receiver import parse_broadcast


def test_offer_is_chromes():
    assert OFFER == 'permessage-deflate; client_max_window_bits'


def test_negotiated_answers():
    assert negotiated(None) is None
    assert negotiated('x-webkit-deflate-frame') is None
    agreed = negotiated('permessage-deflate; client_max_window_bits=15')
    assert agreed and not agreed.server_no_context_takeover
    agreed = negotiated('permessage-deflate; server_no_context_takeover; '
                        'server_max_window_bits=10')
    assert agreed.server_no_context_takeover and agreed.server_max_window_bits == 10


def messages():
    return [f'42["message",{{"room":"r","data":{{"s":"0.0","q":{q},"t":1.5}},'
            f'"from":"app1"}}]'.encode() for q in range(20)]


def test_inflate_with_context_takeover():
    # One compressor for the whole connection: later messages refer back to
    # earlier ones, so only a persistent decompressor can read them.
    shared = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    frames = [deflate_message(m, shared) for m in messages()]
    assert len(frames[-1]) < len(frames[0])  # the window carried over
    inflate = Inflater(negotiated('permessage-deflate'))
    assert [inflate(f) for f in frames] == messages()
    with pytest.raises(zlib.error):  # a fresh decompressor cannot
        fresh = Inflater(negotiated('permessage-deflate; server_no_context_takeover'))
        for f in frames[1:]:
            fresh(f)


def test_inflate_without_context_takeover_in_any_order():
    frames = [deflate_message(m) for m in messages()]
    inflate = Inflater(negotiated('permessage-deflate; server_no_context_takeover'))
    assert [inflate(f) for f in reversed(frames)] == messages()[::-1]


def test_parse_broadcast_compact_and_spaced():
    compact = messages()[3]
    assert parse_broadcast(compact) == (b'0.0', 3, 1.5, b'app1')
    spaced = b'42["message", {"room": "r", "data": {"q": 7, "s": "1.2", "t": 2.5}, "from": "x"}]'
    assert parse_broadcast(spaced) == (b'1.2', 7, 2.5, b'x')
    assert parse_broadcast(b'42["message",{"room":"r"}]') is None


def test_config_options_come_from_the_fields():
    ap = config.add_options(argparse.ArgumentParser())
    cfg = config.from_args(ap.parse_args(['broadcast']))
    assert cfg == config.Config(command='')
    cfg = config.from_args(ap.parse_args(
        ['reconnect', '-c', '7', '--no-restore', '--compression', 'off', '--origin', '',
         '--senders', '99', '--path', '/sio/']))
    assert (cfg.clients, cfg.restore, cfg.offers_deflate, cfg.origin, cfg.senders,
            cfg.path) == (7, False, False, None, 7, '/sio')
