"""Configuration: sane defaults, and one clear sentence for each bad value."""
import re
from pathlib import Path

import pytest

from control import base as tools
from socketio_kit.config import KIT_PREFIX, ConfigError, load_cluster, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults():
    s = load_settings({'INSTANCE_NAME': 'app1'})
    assert s.cors_allowed_origins == ('http://localhost:8081',
                                      'http://127.0.0.1:8081')
    assert s.cors_credentials is True
    assert s.protocol.socketio_path == '/socket.io'
    assert (s.protocol.ping_interval, s.protocol.ping_timeout) == (25, 20)
    assert s.worker_class == 'eventlet'
    c = load_cluster({})
    assert c.instances == 3 and c.http_port == 8080
    assert c.instance_names == ('app1', 'app2', 'app3')
    assert c.proxy_timeout >= 2 * (c.protocol.ping_interval + c.protocol.ping_timeout)


def test_origins_are_parsed_and_trimmed():
    s = load_settings({'CORS_ALLOWED_ORIGINS':
                       ' https://a.example , http://localhost:3000,'
                       'http://[::1]:8081 '})
    assert s.cors_allowed_origins == ('https://a.example',
                                      'http://localhost:3000',
                                      'http://[::1]:8081')


def test_wildcard_without_credentials_is_allowed():
    s = load_settings({'CORS_ALLOWED_ORIGINS': '*', 'CORS_CREDENTIALS': 'false'})
    assert s.cors_wildcard


@pytest.mark.parametrize('env, variable', [
    ({'CORS_ALLOWED_ORIGINS': '*'}, 'CORS_CREDENTIALS'),
    ({'CORS_ALLOWED_ORIGINS': '*,http://a.example',
      'CORS_CREDENTIALS': 'false'}, 'CORS_ALLOWED_ORIGINS'),
    ({'CORS_ALLOWED_ORIGINS': 'http://a.example/'}, 'CORS_ALLOWED_ORIGINS'),
    ({'CORS_ALLOWED_ORIGINS': 'a.example'}, 'CORS_ALLOWED_ORIGINS'),
    ({'CORS_ALLOWED_ORIGINS': 'ftp://a.example'}, 'CORS_ALLOWED_ORIGINS'),
    ({'CORS_ALLOWED_ORIGINS': 'http://a.example/app'}, 'CORS_ALLOWED_ORIGINS'),
    ({'CORS_ALLOWED_ORIGINS': 'http://a.example:99999'}, 'CORS_ALLOWED_ORIGINS'),
    ({'CORS_ALLOWED_ORIGINS': ' , '}, 'CORS_ALLOWED_ORIGINS'),
    ({'CORS_CREDENTIALS': 'maybe'}, 'CORS_CREDENTIALS'),
    ({'SOCKETIO_PATH': 'socket.io'}, 'SOCKETIO_PATH'),
    ({'SOCKETIO_PATH': '/socket.io/'}, 'SOCKETIO_PATH'),
    ({'SOCKETIO_PATH': '/a b'}, 'SOCKETIO_PATH'),
    ({'SOCKETIO_PATH': '/_kit'}, 'SOCKETIO_PATH'),          # the kit's own routes
    ({'SOCKETIO_PATH': '/_kit/socket.io'}, 'SOCKETIO_PATH'),
    ({'PING_INTERVAL': 'soon'}, 'PING_INTERVAL'),
    ({'PING_TIMEOUT': '0'}, 'PING_TIMEOUT'),
    ({'MAX_PAYLOAD_BYTES': '10'}, 'MAX_PAYLOAD_BYTES'),
    ({'WORKER_CLASS': 'sync'}, 'WORKER_CLASS'),
    ({'LOG_LEVEL': 'loud'}, 'LOG_LEVEL'),
    ({'INSTANCE_NAME': 'app.1'}, 'INSTANCE_NAME'),
    ({'INSTANCE_NAME': 'a' * 40}, 'INSTANCE_NAME'),
    ({'REDIS_URL': 'localhost:6379'}, 'REDIS_URL'),
    ({'BIND': '8000'}, 'BIND'),
])
def test_bad_instance_settings_name_the_variable(env, variable):
    with pytest.raises(ConfigError) as exc:
        load_settings({'INSTANCE_NAME': 'app1', **env})
    message = str(exc.value)
    assert message.startswith(variable) or f' {variable}' in message
    # One sentence: no line break, no second sentence, ends with a period.
    assert '\n' not in message and message.endswith('.'), message
    assert not re.search(r'[.;] [A-Z]', message), message


@pytest.mark.parametrize('env, variable', [
    ({'PROXY_TIMEOUT': '60'}, 'PROXY_TIMEOUT'),
    ({'PING_INTERVAL': '60', 'PING_TIMEOUT': '60', 'PROXY_TIMEOUT': '200'},
     'PROXY_TIMEOUT'),
    ({'INSTANCES': '0'}, 'INSTANCES'),
    ({'INSTANCES': 'three'}, 'INSTANCES'),
    ({'HTTP_PORT': '70000'}, 'HTTP_PORT'),
])
def test_bad_cluster_settings_name_the_variable(env, variable):
    with pytest.raises(ConfigError, match=variable):
        load_cluster(env)


def test_proxy_timeout_follows_ping_values():
    c = load_cluster({'PING_INTERVAL': '60', 'PING_TIMEOUT': '60'})
    assert c.proxy_timeout == 240


@pytest.mark.parametrize('path', [
    'page/app.js', 'compose/compose.yaml', 'compose/up', 'compose/swarm-up',
    'compose/swarm-roll', 'deploy/k8s/base/app.yaml', 'deploy/k8s/base/nginx.yaml'])
def test_the_kit_prefix_is_spelled_the_same_where_it_cannot_be_imported(path):
    """The tools ship without the runtime, and YAML, shell and the page's
    JavaScript import nothing: they spell KIT_PREFIX out, in step with it."""
    assert tools.KIT_PREFIX == KIT_PREFIX
    text = (ROOT / path).read_text()
    assert f'{KIT_PREFIX}/' in text or f"{KIT_PREFIX}`" in text
    rest = re.sub(rf'{KIT_PREFIX}/(instance/[^/\s"]+/)?healthz', '', text)
    assert '/healthz' not in rest and '/_instance/' not in rest
