"""A stolen sid is not enough, Redis needs its password, and nginx limits
what one address can open."""
import json
import socket
import time

import redis

from doctor.wire import Target, eio_query, websocket
from tests.support import (
    ALLOWED_ORIGIN,
    PATH,
    Client,
    PollingSession,
    http_request,
    local_cluster,
)


def test_stolen_sid_cannot_poll_post_or_upgrade(attack):
    """SESSION_BINDING=auto (default): once the victim has sent its HttpOnly
    cookie back, the sid without it gets 400 on GET, POST and the WebSocket
    upgrade, even from the victim's own address (the thief here shares it),
    and the victim's session carries on."""
    victim = PollingSession(attack.url)
    assert victim.cookie, 'the handshake set no binding cookie'
    assert victim.connect() in attack.lc.app_ports
    thief = {'Origin': ALLOWED_ORIGIN, 'Content-Type': 'text/plain'}
    resp = http_request(attack.url, 'GET', victim.query, thief)
    assert resp.status == 400, resp.status
    resp = http_request(attack.url, 'POST', victim.query, thief,
                        b'42["whoami"]')
    assert resp.status == 400, resp.status
    forged = {**thief, 'Cookie': 'kit_session_eio=guessed'}
    resp = http_request(attack.url, 'POST', victim.query, forged, b'41')
    assert resp.status == 400, resp.status
    resp, ws = websocket(Target.parse(attack.url),
                         eio_query(PATH, transport='websocket', sid=victim.sid),
                         {'Origin': ALLOWED_ORIGIN})
    assert ws is None and resp.status == 400, resp.status
    assert victim.whoami() in attack.lc.app_ports


def test_the_binding_cookie_is_httponly_and_scoped(attack):
    resp = http_request(attack.url,
                        path=eio_query(PATH, transport='polling'),
                        headers={'Origin': ALLOWED_ORIGIN})
    cookie = resp.first('Set-Cookie')
    assert cookie.startswith('kit_session_eio=')
    assert 'HttpOnly' in cookie and f'Path={PATH}/' in cookie
    assert 'SameSite=Lax' in cookie


def test_python_client_keeps_its_cookie_through_the_upgrade(attack):
    """Well-behaved clients are unaffected: polling, then WebSocket."""
    client = Client(attack.url, transports=('polling', 'websocket')).connect()
    try:
        assert client.call('whoami')['instance'] in attack.lc.app_ports
    finally:
        client.close()


def test_redis_refuses_clients_without_the_password(attack):
    """Native mode's Redis has a generated password: a local process cannot
    PUBLISH forged broadcasts."""
    port = attack.lc.settings.redis_port
    with socket.create_connection(('127.0.0.1', port), 2) as sock:
        sock.sendall(b'PUBLISH socketio x\r\n')
        assert sock.recv(64).startswith(b'-NOAUTH')
    config = redis.Redis.from_url(attack.lc.redis_url)
    limits = config.config_get('client-output-buffer-limit')
    assert 'pubsub 268435456 67108864 60' in json.dumps(limits)
    assert (attack.lc.run_dir / 'redis.pass').stat().st_mode & 0o077 == 0


def _tight(tmp_path_factory, **env):
    """A one-instance cluster with small per-address limits in nginx."""
    return local_cluster(tmp_path_factory.mktemp('tight'), 1,
                         {k.upper(): str(v) for k, v in env.items()})


def test_nginx_limits_handshakes_per_address(tmp_path_factory):
    with _tight(tmp_path_factory, nginx_handshakes_per_second=5,
                nginx_handshake_burst=10) as lc:
        statuses = [http_request(lc.url, path=eio_query(
            PATH, transport='polling'), headers={'Origin': ALLOWED_ORIGIN}
        ).status for _ in range(30)]
        assert statuses.count(200) <= 12 and 429 in statuses, statuses
        # nginx reads the sid as the instances do (exact case): `SID=` is no
        # session, so it does not dodge the limit.
        time.sleep(2.0)
        dodged = [http_request(lc.url, path=eio_query(
            PATH, transport='polling') + '&SID=app1.' + 'x' * 20,
            headers={'Origin': ALLOWED_ORIGIN}).status for _ in range(30)]
        assert dodged.count(200) <= 12 and 429 in dodged, dodged
        # Requests of an existing session are not handshakes: not throttled.
        time.sleep(1.0)  # a few handshakes' worth of tokens again
        session = PollingSession(lc.url)
        session.connect()
        for _ in range(3):
            session.whoami()


def test_nginx_limits_connections_per_address(tmp_path_factory):
    with _tight(tmp_path_factory, nginx_connections_per_address=20) as lc:
        held, refused = [], 0
        try:
            for _ in range(30):
                resp, ws = websocket(Target.parse(lc.url),
                                     eio_query(PATH, transport='websocket'),
                                     {'Origin': ALLOWED_ORIGIN})
                if ws is None:
                    refused += resp.status == 429
                else:
                    held.append(ws)
        finally:
            for ws in held:
                ws.close()
        assert len(held) == 20 and refused == 10, (len(held), refused)
