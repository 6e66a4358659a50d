"""The nginx.conf of deploy/k8s, on real nginx, in front of a native cluster
whose instances are named like StatefulSet pods (app-0, app-1 on 127.0.0.10,
127.0.0.11), with a dnsmasq on a loopback port standing in for kube-dns: it
answers app-N.app.socketio.svc.cluster.local and app-pool.socketio.svc.
cluster.local from one hosts file per pod (--hostsdir, re-read on change, as
cluster DNS follows the Endpoints).

It shows: sessions stick to pods by name; a pod added later is routed to
without touching nginx; a forged sid prefix makes nginx look up no name
outside app-<digits>.app.socketio.svc.cluster.local, so it reaches nothing.
"""
import os
import re
import shutil
import socket
import struct
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from native.cluster import LocalCluster
from native.net import free_ports, http_get
from native.processes import ProcessTable
from nginx import k8s
from nginx.render import Paths
from socketio_kit.config import load_cluster
from tests.support import (
    ALLOWED_ORIGIN,
    PATH,
    TEST_SETTINGS,
    PollingSession,
    broadcast_round,
    clients,
    eio_handshake,
    http_request,
    new_room,
)

DOMAIN = f'{k8s.NAMESPACE}.svc.{k8s.CLUSTER_DOMAIN}'
POOL = f'app-pool.{DOMAIN}'
# Every name nginx may ever look up.
ALLOWED_LOOKUP = re.compile(rf'^(app-[0-9]{{1,5}}\.app\.{re.escape(DOMAIN)}|{re.escape(POOL)})$')
WAIT = 15.0


def pod_address(ordinal: int) -> str:
    return f'127.0.0.{10 + ordinal}'


def dns_query(port: int, name: str, timeout: float = 1.0):
    """(rcode, answer count) of an A query to 127.0.0.1:port."""
    query = struct.pack('>HHHHHH', 0x4b1d, 0x0100, 1, 0, 0, 0)
    query += b''.join(bytes([len(p)]) + p.encode() for p in name.split('.')) + b'\0'
    query += struct.pack('>HH', 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(query, ('127.0.0.1', port))
        answer = sock.recv(512)
    _, flags, _, count = struct.unpack('>HHHH', answer[:8])
    return flags & 0xF, count


class Pods:
    """The native cluster, its DNS and the k8s nginx, started together."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.table = ProcessTable(run_dir / 'k8s')
        self.hosts = run_dir / 'hosts'
        self.hosts.mkdir()
        self.dns_log = run_dir / 'dnsmasq.log'
        app_port, http, page, redis, self.dns_port, self.port, self.status_port = \
            free_ports(7)
        self.app_port = app_port
        env = {**TEST_SETTINGS, 'INSTANCES': '2', 'HTTP_PORT': str(http),
               'PAGE_PORT': str(page), 'REDIS_PORT': str(redis)}
        names = ['app-0', 'app-1']
        self.local = LocalCluster(run_dir / 'cluster', load_cluster(env),
                                  dict.fromkeys(names, app_port), env=env,
                                  app_hosts={n: pod_address(i) for i, n in enumerate(names)})
        self.url = f'http://127.0.0.1:{self.port}'

    def publish(self, ordinal: int):
        """The pod's DNS records, as the cluster DNS has them once it is ready."""
        name = f'app-{ordinal}'
        (self.hosts / name).write_text(
            f'{pod_address(ordinal)} {name}.app.{DOMAIN} {POOL}\n')

    def unpublish(self, ordinal: int):
        (self.hosts / f'app-{ordinal}').write_text('')

    def start(self):
        self.local.start()
        for ordinal in range(len(self.local.app_ports)):
            self.publish(ordinal)
        self.table.spawn('dnsmasq', [
            shutil.which('dnsmasq') or '/usr/sbin/dnsmasq', '--keep-in-foreground',
            '--no-resolv', '--no-hosts', '--bind-interfaces',
            '--listen-address=127.0.0.1', f'--port={self.dns_port}',
            f'--hostsdir={self.hosts}', '--local=/cluster.local/', '--user=root',
            '--pid-file=', '--log-queries', f'--log-facility={self.dns_log}'])
        self._until(lambda: self._resolves(f'app-0.app.{DOMAIN}'), 'dnsmasq answers')
        conf = self.run_dir / 'nginx-k8s.conf'
        temp = self.run_dir / 'nginx-k8s-temp'
        temp.mkdir()
        conf.write_text(k8s.conf(
            resolver=f'127.0.0.1:{self.dns_port}', listen=f'127.0.0.1:{self.port}',
            paths=Paths(pid_file=str(self.run_dir / 'nginx-k8s.pid'),
                        error_log=str(self.run_dir / 'nginx-k8s-error.log'),
                        temp_dir=str(temp), mime_types='/etc/nginx/mime.types',
                        user='root' if os.geteuid() == 0 else None),
            app_port=self.app_port, status_listen=f'127.0.0.1:{self.status_port}'))
        nginx = shutil.which('nginx') or '/usr/sbin/nginx'
        self.table.spawn('nginx', [nginx, '-p', str(self.run_dir), '-c', str(conf),
                                   '-g', 'daemon off;'])
        self._until(lambda: http_get(f'{self.url}/_kit/healthz', 1)[0] == 200, 'nginx routes')

    def stop(self):
        for name in ('nginx', 'dnsmasq'):
            self.table.send_signal(name)
        self.local.stop()

    def _resolves(self, name: str) -> bool:
        try:
            return dns_query(self.dns_port, name) == (0, 1)
        except OSError:
            return False

    @staticmethod
    def _until(ready, what: str, wait: float = WAIT):
        deadline = time.monotonic() + wait
        while not ready():
            assert time.monotonic() < deadline, f'not within {wait:.0f}s: {what}'
            time.sleep(0.1)

    def looked_up(self) -> list:
        """Every name nginx asked the DNS for."""
        text = self.dns_log.read_text(errors='replace') if self.dns_log.exists() else ''
        return re.findall(r'query\[\w+\] (\S+) from', text)


@pytest.fixture(scope='module')
def pods(tmp_path_factory):
    if not (shutil.which('dnsmasq') or Path('/usr/sbin/dnsmasq').exists()):
        pytest.fail('dnsmasq is missing: make k8s-deps installs it')
    started = Pods(tmp_path_factory.mktemp('k8s-routing'))
    try:
        started.start()
        yield started
    finally:
        started.stop()


def land_on(url: str, name: str, wait: float = WAIT) -> PollingSession:
    """New polling sessions until one lands on name: the pool is random, and
    nginx trusts its last answer for the pool for `valid` (2 s)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        session = PollingSession(url)
        if session.sid.startswith(name + '.'):
            return session
        time.sleep(0.05)
    raise AssertionError(f'no new session on {name} within {wait:.0f}s')


def test_sessions_stick_to_pods_by_name_and_broadcast_crosses_them(pods):
    seen = set()
    for _ in range(20):
        session = PollingSession(pods.url)
        instance = session.connect()
        assert session.sid.startswith(instance + '.')
        assert session.whoami() == instance
        seen.add(instance)
    assert seen <= {'app-0', 'app-1'}
    with clients(pods.url, 4, ['app-0', 'app-1']) as cs:
        broadcast_round(cs, new_room(), count=3)
    status, body = http_get(f'{pods.url}/_kit/instance/app-1/healthz')
    assert (status, body['instance']) == (200, 'app-1')


@pytest.mark.parametrize('sid', [
    'app-9999.x', 'evil.com.x', 'app-0.attacker.x', 'app-0.attacker.example.',
    'app-1:22.x', '127.0.0.1.x', 'app-0%2eevil.x', 'APP-0.x', 'app-123456.x',
    'app-0\r\nHost: evil.x', 'app-pool.x', 'app-.x',
])
def test_forged_prefix_reaches_nothing(pods, sid):
    started = time.monotonic()
    resp = http_request(pods.url, 'GET', f'{PATH}/?EIO=4&transport=polling&sid={quote(sid)}',
                        {'Origin': ALLOWED_ORIGIN})
    # Either an instance says it has no such session (the pool, or the pod
    # the digits name), or the pod does not exist and nginx fails fast.
    if resp.status == 400:
        assert b'Session ID unknown' in resp.body or b'Invalid session' in resp.body
    else:
        assert resp.status == 502 and sid.startswith('app-9999.'), (resp.status, resp.body)
    assert time.monotonic() - started < 5
    looked_up = pods.looked_up()
    assert looked_up, 'nginx asked the DNS nothing'
    assert [n for n in looked_up if not ALLOWED_LOOKUP.match(n)] == []


def test_instance_paths_resolve_only_pod_names(pods):
    assert http_get(f'{pods.url}/_kit/instance/app-7/healthz')[0] == 502
    for path in ('/_kit/instance/evil.com/healthz', '/_kit/instance/app-0.attacker/healthz',
                 '/_kit/instance/app-0/../x', '/_kit/instance/../healthz'):
        assert http_request(pods.url, 'GET', path).status in (400, 404), path
    assert all(ALLOWED_LOOKUP.match(n) for n in pods.looked_up())
    assert 'evil' not in pods.dns_log.read_text() and 'attacker' not in pods.dns_log.read_text()


def test_a_new_pod_is_routed_without_touching_nginx(pods):
    nginx_pid = pods.table.pid('nginx')
    conf = pods.run_dir / 'nginx-k8s.conf'
    conf_mtime = conf.stat().st_mtime_ns
    # Before: nginx knows app-2 does not exist (and caches that answer).
    assert http_get(f'{pods.url}/_kit/instance/app-2/healthz', 2)[0] == 502
    # What a scale-up does: a pod app-2 starts, becomes ready, its records
    # appear in the cluster DNS. Nothing is done to nginx.
    pods.local.app_ports['app-2'] = pods.app_port
    pods.local.app_hosts['app-2'] = pod_address(2)
    pods.local.start_instance('app-2')
    added = time.monotonic()
    pods.publish(2)
    pods._until(lambda: http_get(f'{pods.url}/_kit/instance/app-2/healthz', 1)[0] == 200,
                'nginx reaches app-2 by name')
    session = land_on(pods.url, 'app-2')
    print(f'app-2 reached by name and given new sessions {time.monotonic() - added:.1f}s '
          f'after its DNS records appeared')
    assert session.connect() == 'app-2' and session.whoami() == 'app-2'
    with clients(pods.url, 6, ['app-0', 'app-1', 'app-2']) as cs:
        broadcast_round(cs, new_room(), count=3)
    assert pods.table.pid('nginx') == nginx_pid and pods.table.is_running('nginx')
    assert conf.stat().st_mtime_ns == conf_mtime
    assert 'reconfiguring' not in (pods.run_dir / 'nginx-k8s-error.log').read_text()

    # A scale-down: the pod's records go, then the pod. Its sessions fail
    # fast, and new sessions go to the others.
    pods.unpublish(2)
    pods.local.processes.send_signal('app-2')
    pods._until(lambda: http_get(f'{pods.url}/_kit/instance/app-2/healthz', 1)[0] == 502,
                'app-2 unknown to nginx')
    resp = http_request(pods.url, 'GET', session.query, {'Origin': ALLOWED_ORIGIN})
    assert resp.status == 502
    for _ in range(10):
        assert eio_handshake(pods.url)[1]['sid'].split('.')[0] in ('app-0', 'app-1')
