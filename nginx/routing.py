"""How nginx finds the instances: fixed upstreams, or names resolved per request.

- Static (native mode, compose): one `upstream` per instance at a fixed
  address, written into the config; changing the instances means re-rendering
  and reloading nginx. nginx/render.py renders the instances' blocks itself;
  `pool_upstream()` is the balanced pool of new handshakes.
- `Resolved` (Docker Swarm, Kubernetes): nginx asks a DNS server at request
  time. The sid prefix names the instance (`app-2.Xk3...` -> `app-2.<domain>`),
  and new handshakes go to a pool name that resolves to every ready instance
  (a Swarm network alias shared by the instances, a Kubernetes headless
  Service). Adding an instance needs no re-render and no reload: its name
  starts resolving. Open-source nginx (Debian's 1.22) re-resolves only names
  in a variable `proxy_pass`, which is why these are variables.

Only names of the form PREFIX<digits> are ever looked up: the prefix is fixed
here and the regex captures digits only, so no client-supplied sid can make
nginx resolve, let alone reach, any other host.
"""
import ipaddress
import re
from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

from socketio_kit.config import INSTANCE_NAME_RE, KIT_PREFIX, ConfigError

PREFIX_RE = re.compile(r'^[a-z][a-z0-9-]{0,15}$')
DOMAIN_RE = re.compile(r'^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?$')
# Seconds nginx trusts a DNS answer: how long a new instance may wait to join
# the pool, and a moved one to be found at its new address.
DNS_VALID = 2
RESOLVER_RE = re.compile(r'^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:]+\](:[0-9]{1,5})?$')


def pool_upstream(servers: Sequence[str]) -> str:
    """The static pool: every instance, least connections."""
    return '\n'.join([
        '    # New sessions and the application\'s own requests: least connections,',
        '    # which counts the WebSockets and held long-polls an instance carries (round',
        '    # robin would not), and takes turns among equals. A server that refused a',
        '    # connection is skipped for fail_timeout (1 s), then tried again, so a',
        '    # restored instance takes new clients within a second or so of coming back.',
        '    upstream socketio_all {',
        '        # Shared by all nginx workers, so least_conn sees every connection.',
        '        zone socketio_all 256k;',
        '        least_conn;',
        *(f'        server {s} max_fails=1 fail_timeout=1s;' for s in servers),
        '        keepalive 64;',
        '    }',
    ])


def static_values(servers: Sequence[str]) -> Dict[str, str]:
    """The routing placeholders of the static template."""
    return {'RESOLVER': '    # Fixed upstream addresses below: no DNS at request time.',
            'POOL': 'socketio_all', 'POOL_UPSTREAM': pool_upstream(servers)}


@dataclass(frozen=True)
class Resolved:
    """Instances found through DNS at request time.

    resolver: the DNS server nginx asks (127.0.0.11 in Swarm, kube-dns in
      Kubernetes, a test's dnsmasq on a loopback port).
    prefix: instance names are PREFIX<digits> (`app` in Swarm: app1, app2;
      `app-` in Kubernetes: the StatefulSet's pod names app-0, app-1).
    domain: appended to an instance name to make the name looked up
      (`app.socketio.svc.cluster.local`; empty in Swarm, whose DNS answers
      service names as they are).
    pool: the name that resolves to every ready instance.
    real_ip_from: networks of the proxies in front (an Ingress controller)
      whose X-Forwarded-For nginx trusts, so that the per-address limits see
      the client, not the proxy; empty when clients arrive directly (Swarm's
      host-mode port keeps their addresses).
    """
    resolver: str
    prefix: str
    domain: str
    pool: str
    port: int = 8000
    valid: int = DNS_VALID
    digits: int = 5
    real_ip_from: Tuple[str, ...] = ()

    def __post_init__(self):
        if not PREFIX_RE.match(self.prefix):
            raise ConfigError(f'instance prefix {self.prefix!r} must be lowercase '
                              f'letters, digits or "-", starting with a letter.')
        longest = self.prefix + '9' * self.digits
        if not INSTANCE_NAME_RE.match(longest):
            raise ConfigError(f'{longest!r} would not be a valid instance name.')
        for label, value in (('domain', self.domain), ('pool', self.pool)):
            if value and not DOMAIN_RE.match(value):
                raise ConfigError(f'{label} {value!r} is not a DNS name.')
        if not self.pool:
            raise ConfigError('the pool name is empty; give the name that '
                              'resolves to every instance.')
        if not RESOLVER_RE.match(self.resolver):
            raise ConfigError(f'resolver {self.resolver!r} is not HOST[:PORT].')
        for network in self.real_ip_from:
            try:
                ipaddress.ip_network(network)
            except ValueError:
                raise ConfigError(f'real_ip_from {network!r} is not a network.') from None
        if not 0 < self.port < 65536 or not 1 <= self.valid <= 300:
            raise ConfigError('port must be 1-65535 and valid 1-300 seconds.')

    @property
    def pattern(self) -> str:
        """The regex (nginx PCRE) of an instance name."""
        return f'{self.prefix}[0-9]{{1,{self.digits}}}'

    def host(self, variable: str) -> str:
        suffix = f'.{self.domain}' if self.domain else ''
        return f'"${{{variable}}}{suffix}:{self.port}"'

    def _real_ip(self) -> list:
        if not self.real_ip_from:
            return []
        return ['',
                '    # Clients arrive through the proxies in front: take their address from',
                '    # X-Forwarded-For, trusted from these networks only.',
                *(f'    set_real_ip_from {n};' for n in self.real_ip_from),
                '    real_ip_header X-Forwarded-For;',
                '    real_ip_recursive on;']

    def values(self) -> Dict[str, str]:
        """The routing placeholders of the template for this routing."""
        resolver = '\n'.join([
            '    # Instances are found by name when a request needs them (nginx/routing.py):',
            '    # an instance added later is reachable without a reload, one that moved',
            '    # is found at its new address after `valid`.',
            f'    resolver {self.resolver} valid={self.valid}s ipv6=off;',
            '    resolver_timeout 2s;',
            '    map $host $socketio_pool {',
            f'        default "{self.pool}:{self.port}";',
            '    }',
            *self._real_ip(),
        ])
        return {
            'RESOLVER': resolver,
            'POOL': '$socketio_pool',
            'POOL_UPSTREAM': '',
            'INSTANCE_UPSTREAMS': '',
            # A sid whose prefix is not PREFIX<digits> goes to the pool, whose
            # instance answers "Session ID unknown", as in the static config.
            'SID_MAP': f'        "~^(?<sid_instance>{self.pattern})\\." '
                       f'{self.host("sid_instance")};',
            'HEALTH_MAP': f'        "~^{KIT_PREFIX}/instance/(?<health_instance>'
                          f'{self.pattern})/healthz$" {self.host("health_instance")};',
        }
