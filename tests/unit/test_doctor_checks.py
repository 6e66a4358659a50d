"""The doctor's parsing and classification helpers (no network)."""
import dataclasses
from pathlib import Path

import pytest

from doctor import scheme
from doctor.__main__ import line, summary
from doctor.fixes import FIXES, UPGRADE_MAP
from doctor.probe import (
    Handshake,
    Probe,
    allow_origins,
    credentials,
    is_unknown_session,
    welcome_instance,
)
from doctor.result import FAIL, PASS, WARN, Options, Result
from doctor.runner import CHECKS, run
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
    assert allow_origins(r) == ['http://a', '*']
    assert credentials(r)
    assert allow_origins(response(headers=[(
        'Access-Control-Allow-Origin', 'http://a, http://b')])) == \
        ['http://a', 'http://b']


def test_unknown_session_bodies_of_python_and_node():
    assert is_unknown_session(response(400, body=b'"Invalid session app1.x"'))
    assert is_unknown_session(response(
        400, body=b'{"code":1,"message":"Session ID unknown"}'))
    assert not is_unknown_session(response(400, body=b'"Not an accepted origin."'))


def test_welcome_instance_from_a_poll():
    text = '40{"sid":"s"}\x1e42["welcome",{"instance":"app2","sid":"s"}]'
    assert welcome_instance(text) == 'app2'
    assert welcome_instance('40{"sid":"s"}') is None


def test_output_line_has_fix_only_when_not_passing():
    ok = Result('cors', PASS, 'fine', 'never shown')
    bad = Result('cors', FAIL, 'two values', 'remove add_header', 'cors-duplicate')
    assert line(ok, False) == 'PASS cors      fine'
    assert line(bad, False).endswith('two values -> fix: remove add_header')
    assert summary([ok, bad]) == '1 PASS, 0 WARN, 1 FAIL, 0 SKIP'


# -- scheme: decided from the two URLs alone -----------------------------------
def scheme_of(url, origin, kit=None):
    probe = dataclasses.replace(Probe.parse(Options(url, origin)), kit=kit)
    [result] = scheme.check(probe)
    return result


def test_https_page_against_http_url_is_mixed_content():
    result = scheme_of('http://localhost:8080', 'https://localhost:8081')
    assert (result.status, result.fault) == (FAIL, 'scheme-mixed')
    assert 'https://' in result.fix
    # Against the kit the fix names where TLS goes.
    kit = scheme_of('http://localhost:8080', 'https://localhost:8081', 'app1')
    assert 'in front of the balancer' in kit.fix


def test_http_page_against_https_url_is_a_warning():
    result = scheme_of('https://example.com', 'http://example.com')
    assert (result.status, result.fault) == (WARN, 'scheme-reverse')


@pytest.mark.parametrize('url, origin, note', [
    ('http://localhost:8080', 'http://localhost:8081', False),
    ('http://127.0.0.1:8080', 'http://localhost:8081', True),
])
def test_same_scheme_passes_and_notes_another_site(url, origin, note):
    result = scheme_of(url, origin)
    assert result.status == PASS
    assert ('different sites' in result.saw) == note


def test_an_origin_that_is_not_one_is_refused():
    assert scheme_of('http://localhost:8080', 'localhost:8081').fault == \
        'bad-origin-arg'


# -- the runner ---------------------------------------------------------------
def unreachable(**options):
    """A probe whose first handshake failed (no request is made here)."""
    probe = Probe.parse(Options('http://127.0.0.1:9', 'http://localhost:8081',
                                **options))
    return dataclasses.replace(probe, handshake=Handshake(
        '/socket.io/?EIO=4&transport=polling', error='ConnectionRefusedError'))


def test_without_a_handshake_every_later_check_is_skipped():
    results = run(unreachable(slow=True))
    assert [r.check for r in results] == [c.name for c in CHECKS]
    assert results[1].fault == 'unreachable'
    # scheme, path and tls need no handshake; every later check is skipped.
    assert {r.status for r in results[3:]} == {'SKIP'}


def test_slow_check_only_with_slow():
    assert 'slow' not in [r.check for r in run(unreachable())]


def test_upgrade_advice_matches_the_kits_map():
    template = Path(__file__).resolve().parents[2] / 'nginx' / 'nginx.conf.template'
    assert "''      '';" in template.read_text()
    assert "'' '';" in UPGRADE_MAP and 'close' not in UPGRADE_MAP
    assert all(fix.kit and fix.generic for fix in FIXES.values())
