"""The fixes the doctor prints, in one table: the kit's setting or file when
/_kit/healthz says the target is the kit, the generic python-socketio / Node
socket.io option or nginx directive otherwise.

Templates are str.format strings; `fix(probe, name, **fields)` fills them.
"""
import dataclasses

from doctor.probe import Probe


@dataclasses.dataclass(frozen=True)
class Fix:
    kit: str
    generic: str


# The upgrade map, as the kit writes it (nginx/nginx.conf.template). nginx's
# own example maps '' to `close`; an empty Connection header instead lets
# polling requests reuse the upstream's keepalive connections, and an upgrade
# still gets `Connection: upgrade`. Both work; the doctor advises what the
# kit does, so its advice and the kit agree.
UPGRADE_MAP = "map $http_upgrade $connection_upgrade { default upgrade; '' ''; }"
NGINX_UPGRADE = ('in the nginx location: `proxy_http_version 1.1; '
                 'proxy_set_header Upgrade $http_upgrade; proxy_set_header '
                 f'Connection $connection_upgrade;` with `{UPGRADE_MAP}` (the '
                 "empty value keeps upstream keepalive for polling)")
NGINX_CONNECTION = ('add `proxy_set_header Connection $connection_upgrade;` '
                    '(with the map above) and `proxy_http_version 1.1;`')

FIXES = {
    'allow-list': Fix(
        'add {origin} to CORS_ALLOWED_ORIGINS (exact origins, comma-separated)'
        ' and keep CORS_CREDENTIALS=true; nginx adds no CORS headers',
        'allow exactly this origin on the Socket.IO server: python-socketio '
        'cors_allowed_origins=["{origin}"], Node new Server({{cors: {{origin: '
        '["{origin}"], credentials: true}}}}); do not add CORS headers in the '
        'proxy as well'),
    'exact-origins': Fix(
        'list the exact origins in CORS_ALLOWED_ORIGINS',
        'replace "*" with the exact origins: python-socketio '
        'cors_allowed_origins=["{origin}"], Node cors: {{origin: ["{origin}"]}}'),
    'credentials': Fix(
        'set CORS_CREDENTIALS=true',
        'python-socketio cors_credentials=True, Node cors: {{credentials: true}}'),
    'scheme-mixed': Fix(
        'terminate TLS in front of the balancer and connect to https://... '
        '(wss:// follows)',
        'serve Socket.IO over https and use an https:// URL in io(...)'),
    'path-other': Fix(
        'the server answers at {found}: use io(url, {{path: "{found}"}}) in the'
        ' client and --path {found} here, or set SOCKETIO_PATH',
        'the server answers at {found}: use io(url, {{path: "{found}"}}) in the'
        ' client and --path {found} here, or mount the server at {path}'),
    'sticky': Fix(
        'the kit routes by the sid prefix (nginx/nginx.conf.template, map '
        '$session_id): check that every instance has a distinct INSTANCE_NAME '
        'and that nginx was rendered for all of them',
        'add affinity in the balancer: nginx `ip_hash;` (or `hash '
        '$remote_addr consistent;`) in the upstream, or route by the sid like '
        'this kit; or use transports: ["websocket"] only'),
    'binding-cookie': Fix(
        'set SESSION_BINDING=auto (the default: the cookie when the client '
        'sends it back, else the address it connected from), or connect with '
        'io(url, {{withCredentials: true}})',
        'the server binds each session to a cookie its handshake sets, which a '
        'client on another origin sends only with io(url, {{withCredentials: '
        'true}}) (and credentials allowed in CORS); or bind sessions to '
        'something every request carries'),
    'binding-address': Fix(
        'the client address nginx passes (X-Real-IP) changed within one '
        'session: behind another proxy, restore the client\'s with nginx '
        'real_ip (set_real_ip_from, real_ip_header X-Forwarded-For); with '
        'SESSION_BINDING=auto a client that sends its cookie back '
        '(withCredentials: true) passes from any address',
        'the server binds each session to the client address, which changed '
        'within one session: restore the client address behind proxies, or '
        'bind sessions to a cookie'),
    'proxy-timeout': Fix(
        'raise PROXY_TIMEOUT (nginx proxy_read_timeout / proxy_send_timeout) '
        'above {twice:.0f} s',
        'raise nginx `proxy_read_timeout` (and `proxy_send_timeout`) well above'
        ' pingInterval + pingTimeout ({window:.0f} s), e.g. {suggested:.0f}s'),
}


def fix(probe: Probe, name: str, **fields) -> str:
    """The fix called `name`, for the kit or for any deployment."""
    entry = FIXES[name]
    return (entry.kit if probe.kit else entry.generic).format(**fields)


def allow_list(probe: Probe) -> str:
    """Allow exactly the page's origin (the most common CORS fix)."""
    return fix(probe, 'allow-list', origin=probe.origin)
