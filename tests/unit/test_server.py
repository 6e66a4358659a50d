"""The instance's own pieces, without a network: sids, the origin policy."""
import logging

from app.config import load_settings
from app.server import OriginPolicy, create_server, session_from_environ


def _settings(**env):
    return load_settings({'INSTANCE_NAME': 'app7', **env})


def test_session_ids_carry_the_instance_name():
    sio = create_server(_settings())
    ids = {sio.eio.generate_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith('app7.') and len(i) > 20 for i in ids)
    assert all('/' not in i and '+' not in i and '=' not in i for i in ids)


def test_origin_policy_allows_listed_and_logs_refusals_once(caplog):
    policy = OriginPolicy(_settings(
        CORS_ALLOWED_ORIGINS='http://a.example,http://b.example'))
    with caplog.at_level(logging.WARNING, logger='app'):
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
    assert session_from_environ(env, 'kit_session') == 'abc123'
    assert session_from_environ({}, 'kit_session') is None
    assert session_from_environ({'HTTP_COOKIE': '"";;=='}, 'kit_session') is None
