"""The rendered nginx config: routing, upgrade headers, timeouts, no CORS,
the kit's routes under one prefix and every other path the application's."""
import re
import shutil
import subprocess

import pytest

from nginx.render import Instance, Paths, parse_instance, render
from socketio_kit.config import KIT_PREFIX, ConfigError, load_cluster

INSTANCES = [Instance('app1', '10.0.0.1:8000'), Instance('app2', '10.0.0.2:8000'),
             Instance('app3', '10.0.0.3:8000')]


def _conf(env=None, instances=INSTANCES):
    return render(instances, load_cluster(env or {}), '8080')


def test_sid_map_only_yields_defined_upstreams():
    conf = _conf()
    block = re.search(r'map \$session_id \$socketio_upstream \{(.*?)\}', conf,
                      re.S).group(1)
    targets = re.findall(r'\s(\S+);', block)
    defined = set(re.findall(r'upstream (\S+) \{', conf))
    assert targets and set(targets) <= defined
    assert 'default socketio_all;' in block
    for i in INSTANCES:
        assert f'"~^{i.name}\\." socketio_{i.name};' in block
        assert re.search(rf'upstream socketio_{i.name} \{{\s+server {i.address};',
                         conf)


def test_proxy_pass_uses_only_the_mapped_variable_or_fixed_names():
    passes = re.findall(r'proxy_pass (\S+);', _conf())
    for target in passes:
        assert target in ('http://$socketio_upstream', 'http://socketio_all',
                          f'http://$instance_upstream{KIT_PREFIX}/healthz'), target


def test_upgrade_headers_and_buffering():
    conf = _conf()
    assert 'map $http_upgrade $connection_upgrade' in conf
    location = conf[conf.index('location /socket.io/'):]
    location = location[:location.index('}')]
    for line in ('proxy_http_version 1.1;',
                 'proxy_set_header Upgrade $http_upgrade;',
                 'proxy_set_header Connection $connection_upgrade;',
                 'proxy_set_header Host $host;',
                 'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
                 'proxy_set_header X-Forwarded-Proto $scheme;',
                 'proxy_set_header X-Forwarded-Host $http_host;',
                 'proxy_buffering off;'):
        assert line in location, line


def _locations(conf):
    """{location: body} of the balancer's server block (not the status
    server's or the page's)."""
    server = conf[conf.index('        listen 8080;'):conf.index("# nginx's own counters")]
    return dict(re.findall(r'\n        location ([^{]+?) \{\n(.*?)\n        \}', server, re.S))


def test_the_kit_routes_live_under_one_prefix_and_the_rest_is_the_apps():
    locations = _locations(_conf())
    assert KIT_PREFIX == '/_kit'
    assert set(locations) == {
        '/socket.io/', f'= {KIT_PREFIX}/healthz', f'~ ^{KIT_PREFIX}/(session|token)$',
        f'{KIT_PREFIX}/instance/', f'{KIT_PREFIX}/', '/'}
    # The rest of the prefix (stats) is nobody's through the balancer.
    assert locations[f'{KIT_PREFIX}/'].split() == ['return', '404;']
    assert 'return 404' not in locations['/']
    assert f'{KIT_PREFIX}/instance/app2/healthz socketio_app2;' in _conf()


def test_the_applications_paths_are_balanced_with_proxy_headers():
    app = _locations(_conf())['/']
    # Not sticky: the balanced pool, whatever the query says.
    assert 'proxy_pass http://socketio_all;' in app
    for line in ('proxy_http_version 1.1;', 'proxy_set_header Connection "";',
                 'proxy_set_header Host $host;',
                 'proxy_set_header X-Real-IP $remote_addr;',
                 'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
                 'proxy_set_header X-Forwarded-Proto $scheme;'):
        assert line in app, line
    assert 'Upgrade' not in app
    assert 'least_conn;' in _conf()


def test_every_proxied_location_has_the_per_address_limits():
    locations = _locations(_conf())
    proxied = {k: v for k, v in locations.items() if 'proxy_pass' in v}
    assert len(proxied) == 5
    for name, body in proxied.items():
        assert 'limit_conn per_address 2000;' in body, name
        # Only the Socket.IO location tells sessions from new handshakes; on
        # every other path each request counts, so `?sid=x` dodges nothing.
        zone = 'handshakes' if name == '/socket.io/' else 'requests'
        assert f'limit_req zone={zone} burst=2000 nodelay;' in body, name
    assert 'limit_req_zone $binary_remote_addr zone=requests:10m rate=100r/s;' in _conf()


def test_nginx_adds_no_cors_headers():
    assert 'Access-Control' not in re.sub(r'#.*', '', _conf())


def test_no_ip_hash():
    assert 'ip_hash' not in re.sub(r'#.*', '', _conf())


def test_timeouts_follow_ping_values():
    conf = _conf({'PING_INTERVAL': '50', 'PING_TIMEOUT': '40'})
    assert 'proxy_read_timeout 180s;' in conf
    assert 'proxy_send_timeout 180s;' in conf
    with pytest.raises(ConfigError, match='PROXY_TIMEOUT'):
        _conf({'PING_INTERVAL': '50', 'PING_TIMEOUT': '40', 'PROXY_TIMEOUT': '100'})


def test_sized_for_ten_thousand_websockets():
    conf = _conf()
    connections = int(re.search(r'worker_connections (\d+);', conf).group(1))
    nofile = int(re.search(r'worker_rlimit_nofile (\d+);', conf).group(1))
    # Each proxied WebSocket holds a client and an upstream connection.
    assert connections >= 2 * 10_000
    assert nofile >= connections


def test_custom_path():
    conf = _conf({'SOCKETIO_PATH': '/rt/io'})
    assert 'location /rt/io/ {' in conf


@pytest.mark.parametrize('text', ['app1', 'app.1=h:1', '=h:1', 'app1=host'])
def test_bad_instance_argument(text):
    with pytest.raises(ConfigError):
        parse_instance(text)


def test_duplicate_names_refused():
    with pytest.raises(ConfigError, match='unique'):
        _conf(instances=[INSTANCES[0], INSTANCES[0]])


@pytest.mark.skipif(shutil.which('nginx') is None and
                    not shutil.which('/usr/sbin/nginx'), reason='no nginx')
def test_nginx_accepts_the_rendered_config(tmp_path):
    nginx = shutil.which('nginx') or '/usr/sbin/nginx'
    conf = tmp_path / 'nginx.conf'
    conf.write_text(render(
        [Instance('app1', '127.0.0.1:9'), Instance('app2', '127.0.0.1:10')],
        load_cluster({}), '127.0.0.1:1',
        Paths(str(tmp_path / 'nginx.pid'), str(tmp_path / 'error.log'), 'off',
              str(tmp_path))))
    result = subprocess.run([nginx, '-t', '-p', str(tmp_path), '-c', str(conf)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
