"""The instance's own pieces, without a network: sids, the origin policy."""
import logging

from socketio_kit.config import load_settings
from socketio_kit.policy.binding import cookie_value
from socketio_kit.server import OriginPolicy, Server


def _settings(**env):
    return load_settings({'INSTANCE_NAME': 'app7', **env})


def test_session_ids_carry_the_instance_name():
    sio = Server(settings=_settings())
    ids = {sio.eio.generate_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith('app7.') and len(i) > 20 for i in ids)
    assert all('/' not in i and '+' not in i and '=' not in i for i in ids)


def test_origin_policy_allows_listed_and_logs_refusals_once(caplog):
    policy = OriginPolicy(_settings(
        CORS_ALLOWED_ORIGINS='http://a.example,http://b.example'))
    with caplog.at_level(logging.WARNING, logger='socketio_kit'):
        assert policy('http://a.example')
        assert not policy('http://evil.example')
        assert not policy('http://evil.example')
        assert not policy('https://a.example')  # scheme matters
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert 'app7' in warnings[0] and 'http://evil.example' in warnings[0]
    assert 'CORS_ALLOWED_ORIGINS=http://a.example,http://b.example' in warnings[0]


def test_session_cookie_is_read_from_the_handshake():
    env = {'HTTP_COOKIE': 'other=1; kit_session=abc123'}
    assert cookie_value(env, 'kit_session') == 'abc123'
    assert cookie_value({}, 'kit_session') is None
    assert cookie_value({'HTTP_COOKIE': '"";;=='}, 'kit_session') is None


def test_crafted_cookie_headers_cost_nothing():
    """CVE-2024-7592's shape (a quoted value of backslashes) is read in
    linear time, and an oversized Cookie header counts as none."""
    import time
    part = '\\\\' * 1900
    crafted = {'HTTP_COOKIE': f'a="{part}; kit_session=abc; b={part}"'}
    started = time.monotonic()
    for _ in range(100):
        cookie_value(crafted, 'kit_session')
    assert time.monotonic() - started < 0.5
    assert cookie_value({'HTTP_COOKIE': 'kit_session=abc; x=' + 'y' * 9000},
                        'kit_session') is None
