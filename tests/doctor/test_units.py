"""The doctor's parsing and classification helpers (no network)."""
from doctor.__main__ import line, summary
from doctor.checks import (FAIL, PASS, Result, _allow_origins, _credentials,
                           _is_unknown_session, Doctor)
from doctor.wire import Response, Target, decode_payload, eio_query, open_packet


def response(status=200, headers=(), body=b''):
    return Response(status, list(headers), body)


def test_target_parse_keeps_prefix_and_default_ports():
    t = Target.parse('https://example.com/app/')
    assert (t.scheme, t.host, t.port, t.prefix) == ('https', 'example.com', 443, '/app')
    assert t.origin == 'https://example.com'
    assert Target.parse('ws://127.0.0.1:8080').origin == 'http://127.0.0.1:8080'


def test_eio_query_and_payload():
    assert eio_query('/socket.io', transport='polling') == \
        '/socket.io/?EIO=4&transport=polling'
    assert decode_payload('40{"sid":"x"}\x1e42["welcome",{}]') == \
        ['40{"sid":"x"}', '42["welcome",{}]']


def test_open_packet_only_for_an_engineio_v4_handshake():
    ok = response(body=b'0{"sid":"app1.abc","pingInterval":25000}')
    assert open_packet(ok)['sid'] == 'app1.abc'
    assert open_packet(response(404, body=b'0{"sid":"x"}')) is None
    assert open_packet(response(body=b'<html>')) is None


def test_allow_origin_values_split_duplicates_and_commas():
    r = response(headers=[('Access-Control-Allow-Origin', 'http://a'),
                          ('access-control-allow-origin', '*'),
                          ('Access-Control-Allow-Credentials', 'true')])
    assert _allow_origins(r) == ['http://a', '*']
    assert _credentials(r)
    assert _allow_origins(response(headers=[(
        'Access-Control-Allow-Origin', 'http://a, http://b')])) == \
        ['http://a', 'http://b']


def test_unknown_session_bodies_of_python_and_node():
    assert _is_unknown_session(response(400, body=b'"Invalid session app1.x"'))
    assert _is_unknown_session(response(
        400, body=b'{"code":1,"message":"Session ID unknown"}'))
    assert not _is_unknown_session(response(400, body=b'"Not an accepted origin."'))


def test_welcome_instance_from_a_poll():
    text = '40{"sid":"s"}\x1e42["welcome",{"instance":"app2","sid":"s"}]'
    assert Doctor._welcome_instance(text) == 'app2'
    assert Doctor._welcome_instance('40{"sid":"s"}') is None


def test_output_line_has_fix_only_when_not_passing():
    ok = Result('cors', PASS, 'fine', 'never shown')
    bad = Result('cors', FAIL, 'two values', 'remove add_header', 'cors-duplicate')
    assert line(ok, False) == 'PASS cors      fine'
    assert line(bad, False).endswith('two values -> fix: remove add_header')
    assert summary([ok, bad]) == '1 PASS, 0 WARN, 1 FAIL, 0 SKIP'
