"""The security pieces without a network: settings, strict JSON, buckets,
tokens (HS256, RS256, ES256), log filters, log rotation, nginx rendering."""
import logging
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from native.logpipe import rotate
from nginx.render import Instance, render
from socketio_kit.config import ConfigError, load_cluster, load_settings
from socketio_kit.observability.logsafe import OneLine, RateLimit
from socketio_kit.policy import strictjson
from socketio_kit.policy.auth import Authenticator, Unauthorized, is_sid_like
from socketio_kit.policy.guard import event_error
from socketio_kit.policy.limits import (
    AddressBudgets,
    ClientState,
    TokenBucket,
)


def settings(**env):
    return load_settings({'INSTANCE_NAME': 'app1',
                          **{k.upper(): str(v) for k, v in env.items()}})


@pytest.mark.parametrize('env, variable', [
    ({'session_cookie_samesite': 'None', 'session_cookie_secure': 'false'},
     'SESSION_COOKIE_SAMESITE=None requires SESSION_COOKIE_SECURE'),
    ({'session_cookie_secure': 'true'}, 'SESSION_COOKIE_SECURE=true requires TLS'),
    ({'auth_mode': 'jwt'}, 'JWT_SECRET'),
    ({'auth_mode': 'jwt', 'jwt_algorithm': 'RS256'}, 'JWT_PUBLIC_KEY_FILE'),
    ({'demo_tokens': 'true'}, 'DEMO_TOKENS=true only works'),
    ({'rate_bytes_burst': '2000'}, 'RATE_BYTES_BURST'),
    ({'max_rooms_per_client': '0'}, 'MAX_ROOMS_PER_CLIENT'),
    ({'adapter_max_message_bytes': '5000'}, 'ADAPTER_MAX_MESSAGE_BYTES'),
    ({'session_binding': 'ip'}, 'SESSION_BINDING'),
])
def test_bad_security_settings_stop_start_up(env, variable):
    with pytest.raises(ConfigError, match=variable.replace('=', '=')):
        settings(**env)


def test_samesite_none_with_secure_and_tls_is_accepted():
    s = settings(session_cookie_samesite='None', tls='on').security
    assert s.cookie_samesite == 'none' and s.cookie_secure and s.tls


def test_defaults_are_safe():
    s = settings()
    assert s.protocol.max_payload_bytes == 100_000
    sec = s.security
    assert sec.auth_mode == 'none' and sec.session_binding == 'auto'
    assert sec.max_rooms_per_client == 100
    assert sec.adapter_max_message_bytes >= s.protocol.max_payload_bytes


@pytest.mark.parametrize('text', ['NaN', '[Infinity]', '[-Infinity]',
                                  '1e999999', '[9007199254740992]',
                                  '[' + '1' * 5000 + ']'])
def test_strict_json_refuses_what_clients_cannot_parse(text):
    with pytest.raises(ValueError):
        strictjson.loads(text)


def test_strict_json_keeps_real_json_and_never_writes_nan():
    assert strictjson.loads('[1.5,-9007199254740991,"x",null]') == [
        1.5, -9007199254740991, 'x', None]
    with pytest.raises(ValueError):
        strictjson.dumps(float('nan'))


def test_event_shapes_are_the_applications_by_default():
    for data in (['join', {'room': 'a'}], ['whoami'], ['a', {}, {}], ['a', 'text'],
                 ['a', 1, [2], None, 'x']):
        assert event_error(data) is None
    assert 'string' in event_error([1])
    assert 'reserved' in event_error(['connect', {}])
    assert event_error({'a': 1})


def test_strict_event_shapes_are_the_demo_contracts():
    assert event_error(['join', {'room': 'a'}], strict=True) is None
    assert event_error(['whoami'], strict=True) is None
    assert 'one payload' in event_error(['a', {}, {}], strict=True)
    assert 'object' in event_error(['a', 'text'], strict=True)
    assert 'reserved' in event_error(['connect', {}], strict=True)


def test_token_bucket_refills_at_its_rate():
    bucket = TokenBucket(rate=100, burst=5)
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    time.sleep(0.05)
    assert bucket.take()


def test_sid_like_rooms():
    assert is_sid_like('app1.AbCdEfGhIjKlMnOpQrSt')
    assert not is_sid_like('lobby') and not is_sid_like('chat.general')


def _pem_pair(private):
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@pytest.mark.parametrize('algorithm, make', [
    ('RS256', lambda: rsa.generate_private_key(65537, 2048)),
    ('ES256', lambda: ec.generate_private_key(ec.SECP256R1())),
])
def test_public_key_tokens(tmp_path, algorithm, make):
    private, public = _pem_pair(make())
    key_file = tmp_path / 'public.pem'
    key_file.write_text(public)
    auth = Authenticator(settings(auth_mode='jwt', jwt_algorithm=algorithm,
                                  jwt_public_key_file=key_file).security)
    now = int(time.time())
    claims = {'aud': 'socketio-kit', 'iss': 'socketio-kit', 'exp': now + 60,
              'rooms': ['a-*'], 'roles': ['admin']}
    good = auth.claims({'token': jwt.encode(claims, private,
                                            algorithm=algorithm)})
    assert auth.may_join(good, 'a-1') and not auth.may_join(good, 'b')
    assert auth.is_admin(good)
    # An HS256 token signed with the public key (algorithm confusion).
    with pytest.raises(Unauthorized):
        auth.claims({'token': jwt.encode(claims, 'k' * 40, algorithm='HS256')})


def test_one_line_and_rate_limited_logs():
    clock = [0.0]
    limit = RateLimit(3, clock=lambda: clock[0])
    record = logging.LogRecord('engineio.kit', logging.ERROR, __file__, 1,
                               'message handler error', None, None)
    assert [limit.filter(record) for _ in range(5)] == [True] * 3 + [False] * 2
    clock[0] = 61
    assert limit.filter(record) and '2 similar lines' in record.msg
    try:
        raise ValueError('bad packet')
    except ValueError:
        import sys
        exc_info = sys.exc_info()
    record = logging.LogRecord('socketio.kit', logging.ERROR, __file__, 1,
                               'handler error', None, exc_info)
    OneLine().filter(record)
    assert record.exc_info is None and 'ValueError: bad packet' in record.msg


def test_log_rotation_keeps_max_files(tmp_path):
    log = tmp_path / 'app1.log'
    for generation in range(5):
        log.write_text(f'gen {generation}')
        rotate(log, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['app1.log.1',
                                                          'app1.log.2']
    assert (tmp_path / 'app1.log.1').read_text() == 'gen 4'


def test_nginx_limits_and_tls_render(tmp_path):
    cert, key = tmp_path / 'c.pem', tmp_path / 'k.pem'
    cert.write_text('x')
    key.write_text('x')
    cluster = load_cluster({'TLS': 'on', 'TLS_CERT': str(cert),
                            'TLS_KEY': str(key), 'HTTPS_PORT': '9443'})
    text = render([Instance('app1', '127.0.0.1:8001')], cluster,
                  '127.0.0.1:8080')
    assert 'limit_conn per_address 2000;' in text
    assert 'limit_req zone=handshakes burst=2000 nodelay;' in text
    assert 'limit_req zone=requests burst=2000 nodelay;' in text
    # TLS=on: plain http keeps the health check, under the same limits.
    redirect = text[text.index('# TLS=on: plain http'):]
    redirect = redirect[:redirect.index('return 301')]
    assert 'location = /_kit/healthz {' in redirect
    assert 'limit_req zone=requests burst=2000 nodelay;' in redirect
    assert 'listen 127.0.0.1:9443 ssl;' in text
    assert 'Strict-Transport-Security' in text
    assert 'return 301 https://$host:9443$request_uri;' in text
    assert f'client_max_body_size {cluster.protocol.max_payload_bytes};' in text
    off = load_cluster({'NGINX_CONNECTIONS_PER_ADDRESS': '0',
                        'NGINX_HANDSHAKES_PER_SECOND': '0'})
    text = render([Instance('app1', '127.0.0.1:8001')], off, '8080')
    assert 'limit_conn ' not in text and 'ssl' not in text
    with pytest.raises(ConfigError, match='make certs'):
        render([Instance('app1', '127.0.0.1:8001')],
               load_cluster({'TLS': 'on', 'TLS_CERT': str(tmp_path / 'no')}),
               '8080')


def test_minted_tokens_are_what_the_instances_accept(tmp_path, monkeypatch, capsys):
    """python -m socketio_kit.mint signs with JWT_SECRET_FILE and the instances'
    audience, issuer and claim names; without a secret it says so."""
    from socketio_kit import mint
    secret = tmp_path / 'jwt_secret'
    secret.write_text('s' * 40 + '\n')
    monkeypatch.delenv('JWT_SECRET', raising=False)
    monkeypatch.setenv('JWT_SECRET_FILE', str(secret))
    monkeypatch.setenv('JWT_AUDIENCE', 'chat')
    assert mint.main(['--sub', 'alice', '--rooms', 'lobby, team-*', '--roles', 'admin']) == 0
    token = capsys.readouterr().out.strip()
    verify = Authenticator(settings(auth_mode='jwt', jwt_secret='s' * 40,
                                    jwt_audience='chat').security)
    claims = verify.claims({'token': token})
    assert claims['sub'] == 'alice' and verify.is_admin(claims)
    assert verify.may_join(claims, 'team-red') and not verify.may_join(claims, 'other')
    monkeypatch.delenv('JWT_SECRET_FILE')
    assert mint.main([]) == 2
    assert 'JWT_SECRET' in capsys.readouterr().err


def test_connections_from_one_address_share_its_budget():
    security = settings().security
    budgets = AddressBudgets(security)
    assert (budgets.bytes_rate, budgets.bytes_burst) == (2_000_000, 2_000_000)
    assert (budgets.events_rate, budgets.events_burst) == (1000, 2000)
    first = ClientState(security, budgets.budget('10.0.0.1'))
    second = ClientState(security, budgets.budget('10.0.0.1'))
    other = ClientState(security, budgets.budget('10.0.0.2'))
    assert first.take_bytes(1_500_000)
    assert not second.take_bytes(1_000_000)    # the address's burst is spent
    assert other.take_bytes(1_000_000)         # another address is not
    # Events: many connections, each within its own 100/s, share 1000/s.
    many = [ClientState(security, budgets.budget('10.0.0.3')) for _ in range(20)]
    taken = sum(client.take_event() for client in many for _ in range(150))
    assert 2000 <= taken < 2100                # the address's burst, not 20 x 150
    del first, second, many
    assert list(budgets.budgets) == ['10.0.0.2']  # gone with its connections
    off = AddressBudgets(settings(rate_address_bytes_per_second=0,
                                  rate_address_events_per_second=0).security)
    assert off.budget('10.0.0.1') is None
    assert ClientState(security, None).take_bytes(1_000_000)


def test_strict_json_refuses_nesting_past_its_depth():
    """Deep enough to parse, too deep to re-encode safely on the sender's
    instance (it failed there at 464 levels, after the other instances had
    the message): refused at input, like deeper texts."""
    depth = strictjson.MAX_DEPTH
    assert strictjson.loads('[' * depth + ']' * depth)
    for text in ('[' * (depth + 1) + ']' * (depth + 1),
                 '["broadcast",{"data":' + '[' * 464 + ']' * 464 + '}]'):
        with pytest.raises(ValueError, match='nested deeper'):
            strictjson.loads(text)
    wide = '[' + ','.join(['[[1]]'] * 5000) + ']'   # many brackets, shallow
    assert len(strictjson.loads(wide)) == 5000
