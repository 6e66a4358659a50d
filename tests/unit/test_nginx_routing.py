"""DNS routing (nginx/routing.py): what the rendered config may resolve."""
import re
import shutil
import subprocess

import pytest

from nginx.render import Paths, render
from nginx.routing import Resolved
from socketio_kit.config import KIT_PREFIX, ConfigError, load_cluster

SWARM = Resolved('127.0.0.11', 'app', '', 'app-pool')
K8S = Resolved('kube-dns.kube-system.svc.cluster.local', 'app-',
               'app.socketio.svc.cluster.local', 'app-pool.socketio.svc.cluster.local')


def _conf(routing, tmp_path=None):
    paths = Paths(pid_file=str(tmp_path / 'pid'), temp_dir=str(tmp_path)) if tmp_path else Paths()
    return render((), load_cluster({}), '127.0.0.1:8080', paths, routing=routing)


@pytest.mark.parametrize('routing', [SWARM, K8S], ids=['swarm', 'k8s'])
def test_every_proxied_name_comes_from_a_digits_only_capture(routing):
    conf = _conf(routing)
    assert not re.search(r'^\s*upstream ', conf, re.M)  # nothing resolved once, at start
    assert f'resolver {routing.resolver} valid=2s ipv6=off;' in conf
    passes = set(re.findall(r'proxy_pass (\S+);', conf))
    assert passes == {'http://$socketio_upstream', 'http://$socketio_pool',
                      f'http://$instance_upstream{KIT_PREFIX}/healthz'}
    captures = re.findall(r'\(\?<(\w+)>([^)]*)\)', conf)
    assert captures and {p for _, p in captures} == {f'{routing.prefix}[0-9]{{1,5}}'}
    suffix = f'.{routing.domain}' if routing.domain else ''
    for name, _ in captures:
        assert f'"${{{name}}}{suffix}:8000";' in conf


@pytest.mark.parametrize('sid,routed', [
    ('app-0.x', 'app-0'), ('app-12345.x', 'app-12345'), ('app-123456.x', None),
    ('evil.com.x', None), ('app-0x.x', None), ('xapp-0.x', None), ('app-.x', None),
])
def test_the_sid_regex_as_pcre_sees_it(sid, routed):
    conf = _conf(K8S)
    pattern = re.search(r'"~(\^\(\?<sid_instance>[^"]*)"', conf).group(1)
    match = re.match(pattern.replace('(?<', '(?P<'), sid)
    assert (match and match.group('sid_instance')) == routed or (not match and not routed)


@pytest.mark.parametrize('kwargs', [
    {'prefix': 'App'}, {'prefix': 'a.b'}, {'domain': 'evil..com'}, {'pool': ''},
    {'resolver': '1.2.3.4; include /etc/passwd'}, {'port': 0}, {'digits': 40},
])
def test_bad_routing_is_refused(kwargs):
    base = {'resolver': '127.0.0.11', 'prefix': 'app', 'domain': '', 'pool': 'app-pool'}
    with pytest.raises(ConfigError):
        Resolved(**{**base, **kwargs})


@pytest.mark.skipif(not (shutil.which('nginx') or shutil.which('/usr/sbin/nginx')),
                    reason='nginx is not installed (make deps)')
@pytest.mark.parametrize('routing', [SWARM, K8S], ids=['swarm', 'k8s'])
def test_nginx_accepts_it(routing, tmp_path):
    conf = tmp_path / 'nginx.conf'
    conf.write_text(_conf(Resolved('127.0.0.1:53', routing.prefix, routing.domain,
                                   routing.pool), tmp_path))
    nginx = shutil.which('nginx') or '/usr/sbin/nginx'
    result = subprocess.run([nginx, '-t', '-q', '-p', str(tmp_path), '-c', str(conf)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
