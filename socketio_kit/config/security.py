"""The security settings: limits, authentication, session binding, cookies,
TLS and the balancer's per-address limits (README "Security").

Part of socketio_kit/config/settings.py's settings (`Settings.security`, `Cluster.edge`), in a
module of its own only to keep each file small: socketio_kit/config/settings.py calls these
parsers with the same environment mapping, so nothing here reads os.environ,
and a bad value raises ConfigError with one sentence naming the variable.
"""
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Tuple
from urllib.parse import quote

from socketio_kit.config.parse import ConfigError, _bool, _choice, _get, _int

# The checkout (make certs writes certs/ there).
ROOT = Path(__file__).resolve().parents[2]
AUTH_MODES = ('none', 'jwt')
JWT_ALGORITHMS = ('HS256', 'RS256', 'ES256')
SAMESITE = ('lax', 'strict', 'none')
BINDINGS = ('auto', 'cookie', 'address', 'off')
CLAIM_RE = re.compile(r'^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$')
SIZE_RE = re.compile(r'^([0-9]{1,12})([kmg]?)$')


@dataclass(frozen=True)
class Security:
    """Per-client limits, authentication and the session cookie of an instance."""
    max_rooms_per_client: int
    rate_events_per_second: int
    rate_events_burst: int
    rate_bytes_per_second: int
    rate_bytes_burst: int
    rate_address_bytes_per_second: int   # 0: off
    rate_address_events_per_second: int  # 0: off
    rate_disconnect_after: int
    adapter_max_message_bytes: int
    log_rate_per_minute: int
    auth_mode: str
    jwt_algorithm: str
    jwt_key: Optional[str]          # HS256 secret or PEM public key
    jwt_audience: str
    jwt_issuer: str
    jwt_rooms_claim: str
    jwt_role_claim: str
    admin_role: str
    demo_tokens: bool
    demo_secret: Optional[str]      # DEMO_TOKENS signs with the HS256 secret
    session_binding: str
    cookie_samesite: str
    cookie_secure: bool
    tls: bool


@dataclass(frozen=True)
class Edge:
    """What nginx enforces per client address, and TLS at the balancer."""
    connections_per_address: int    # 0: off
    handshakes_per_second: int      # 0: off
    handshake_burst: int
    tls: bool
    https_port: int
    tls_cert: str
    tls_key: str
    hsts_seconds: int
    log_max_bytes: int              # native mode's log rotation
    log_max_files: int


def _claim(env, name, default):
    value = _get(env, name, default)
    if not CLAIM_RE.match(value):
        raise ConfigError(f'{name}={value!r} is not a claim name; use letters, '
                          f'digits, "_", ".", ":" or "-", e.g. {default}.')
    return value


def _read_key(env, name) -> Optional[str]:
    path = _get(env, name, '')
    if not path:
        return None
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f'{name}={path!r} cannot be read ({exc.strerror}); '
                          f'point {name} at a readable PEM file.') from None


def _jwt(env, mode):
    algorithm = _get(env, 'JWT_ALGORITHM', 'HS256').upper()
    if algorithm not in JWT_ALGORITHMS:
        raise ConfigError(f'JWT_ALGORITHM={algorithm!r} is not supported; set '
                          f'it to one of: {", ".join(JWT_ALGORITHMS)}.')
    secret = _get(env, 'JWT_SECRET', '') or None
    if secret is None and _get(env, 'JWT_SECRET_FILE', ''):
        secret = (_read_key(env, 'JWT_SECRET_FILE') or '').strip() or None
    if algorithm == 'HS256':
        key = secret
        if mode == 'jwt' and (key is None or len(key) < 32):
            raise ConfigError('AUTH_MODE=jwt with JWT_ALGORITHM=HS256 needs '
                              'JWT_SECRET (or JWT_SECRET_FILE) of at least 32 '
                              'characters; generate one with `openssl rand '
                              '-hex 32`.')
    else:
        key = _read_key(env, 'JWT_PUBLIC_KEY_FILE')
        if mode == 'jwt' and not key:
            raise ConfigError(f'AUTH_MODE=jwt with JWT_ALGORITHM={algorithm} '
                              f'needs JWT_PUBLIC_KEY_FILE, the PEM public key '
                              f'tokens are verified with.')
    return algorithm, key, secret


def _cookie(env, tls):
    samesite = _choice(env, 'SESSION_COOKIE_SAMESITE', 'lax', SAMESITE)
    secure = _bool(env, 'SESSION_COOKIE_SECURE', samesite == 'none')
    if samesite == 'none' and not secure:
        raise ConfigError('SESSION_COOKIE_SAMESITE=None requires '
                          'SESSION_COOKIE_SECURE=true, because browsers drop '
                          'SameSite=None cookies without Secure.')
    if secure and not tls:
        raise ConfigError('SESSION_COOKIE_SECURE=true requires TLS=on, because '
                          'browsers never send a Secure cookie over http; set '
                          'TLS=on or SESSION_COOKIE_SECURE=false.')
    return samesite, secure


def load_security(env: Mapping[str, str], max_payload: int) -> Security:
    """The security settings of one instance (see .env.example)."""
    mode = _choice(env, 'AUTH_MODE', 'none', AUTH_MODES)
    algorithm, key, secret = _jwt(env, mode)
    demo = _bool(env, 'DEMO_TOKENS', False)
    if demo and (mode != 'jwt' or algorithm != 'HS256'):
        raise ConfigError('DEMO_TOKENS=true only works with AUTH_MODE=jwt and '
                          'JWT_ALGORITHM=HS256 (it signs tokens with '
                          'JWT_SECRET); set DEMO_TOKENS=false.')
    tls = _choice(env, 'TLS', 'off', ('off', 'on')) == 'on'
    samesite, secure = _cookie(env, tls)
    bytes_burst = _int(env, 'RATE_BYTES_BURST', max(2_000_000, max_payload),
                       1024, 1_000_000_000, ' bytes')
    if bytes_burst < max_payload:
        raise ConfigError(f'RATE_BYTES_BURST={bytes_burst} is smaller than '
                          f'MAX_PAYLOAD_BYTES={max_payload}, so a full-size '
                          f'message could never pass; set RATE_BYTES_BURST to '
                          f'at least {max_payload}.')
    adapter_cap = _int(env, 'ADAPTER_MAX_MESSAGE_BYTES',
                       max(1_000_000, 2 * max_payload), 4096, 500_000_000,
                       ' bytes')
    if adapter_cap < max_payload + 1024:
        raise ConfigError(f'ADAPTER_MAX_MESSAGE_BYTES={adapter_cap} cannot '
                          f'carry one MAX_PAYLOAD_BYTES={max_payload} message; '
                          f'set it to at least {max_payload + 1024}.')
    return Security(
        max_rooms_per_client=_int(env, 'MAX_ROOMS_PER_CLIENT', 100, 1,
                                  1_000_000),
        rate_events_per_second=_int(env, 'RATE_EVENTS_PER_SECOND', 100, 1,
                                    1_000_000),
        rate_events_burst=_int(env, 'RATE_EVENTS_BURST', 200, 1, 10_000_000),
        rate_bytes_per_second=_int(env, 'RATE_BYTES_PER_SECOND', 1_000_000,
                                   1024, 1_000_000_000, ' bytes'),
        rate_bytes_burst=bytes_burst,
        rate_address_bytes_per_second=_int(
            env, 'RATE_ADDRESS_BYTES_PER_SECOND', 2_000_000, 0, 1_000_000_000,
            ' bytes'),
        rate_address_events_per_second=_int(
            env, 'RATE_ADDRESS_EVENTS_PER_SECOND', 1000, 0, 100_000_000),
        rate_disconnect_after=_int(env, 'RATE_DISCONNECT_AFTER', 200, 1,
                                   10_000_000, ' refused events'),
        adapter_max_message_bytes=adapter_cap,
        log_rate_per_minute=_int(env, 'LOG_RATE_PER_MINUTE', 20, 1, 100_000),
        auth_mode=mode,
        jwt_algorithm=algorithm,
        jwt_key=key,
        jwt_audience=_get(env, 'JWT_AUDIENCE', 'socketio-kit'),
        jwt_issuer=_get(env, 'JWT_ISSUER', 'socketio-kit'),
        jwt_rooms_claim=_claim(env, 'JWT_ROOMS_CLAIM', 'rooms'),
        jwt_role_claim=_claim(env, 'JWT_ROLE_CLAIM', 'roles'),
        admin_role=_get(env, 'ADMIN_ROLE', 'admin'),
        demo_tokens=demo,
        demo_secret=secret if demo else None,
        session_binding=_choice(env, 'SESSION_BINDING', 'auto', BINDINGS),
        cookie_samesite=samesite,
        cookie_secure=secure,
        tls=tls,
    )


def parse_size(env, name, default) -> int:
    """A size like compose's log options: 10m, 512k, 1g or plain bytes."""
    raw = _get(env, name, default).lower()
    match = SIZE_RE.match(raw)
    if not match or int(match.group(1)) == 0:
        raise ConfigError(f'{name}={raw!r} is not a size; write it like 10m, '
                          f'512k or 1g.')
    return int(match.group(1)) * {'': 1, 'k': 1024, 'm': 1024 ** 2,
                                  'g': 1024 ** 3}[match.group(2)]


def load_edge(env: Mapping[str, str]) -> Edge:
    """The balancer's per-address limits and TLS (nginx/render.py)."""
    tls = _choice(env, 'TLS', 'off', ('off', 'on')) == 'on'
    cert = _get(env, 'TLS_CERT', str(ROOT / 'certs' / 'server.crt'))
    key = _get(env, 'TLS_KEY', str(ROOT / 'certs' / 'server.key'))
    return Edge(
        connections_per_address=_int(env, 'NGINX_CONNECTIONS_PER_ADDRESS',
                                     2000, 0, 1_000_000),
        handshakes_per_second=_int(env, 'NGINX_HANDSHAKES_PER_SECOND', 100, 0,
                                   1_000_000),
        handshake_burst=_int(env, 'NGINX_HANDSHAKE_BURST', 2000, 1,
                             10_000_000),
        tls=tls,
        https_port=_int(env, 'HTTPS_PORT', 8443, 1, 65535),
        tls_cert=cert,
        tls_key=key,
        hsts_seconds=_int(env, 'HSTS_SECONDS', 31536000, 0, 100_000_000,
                          ' seconds'),
        log_max_bytes=parse_size(env, 'LOG_MAX_SIZE', '10m'),
        log_max_files=_int(env, 'LOG_MAX_FILE', 3, 1, 100),
    )


def redis_url_with_password(url: str, env: Mapping[str, str]) -> str:
    """REDIS_URL, with the password of REDIS_PASSWORD_FILE (a compose or
    Kubernetes secret) put in when the URL carries none."""
    path = _get(env, 'REDIS_PASSWORD_FILE', '')
    if not path or '@' in url or url.startswith('unix://'):
        return url
    try:
        password = Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f'REDIS_PASSWORD_FILE={path!r} cannot be read '
                          f'({exc.strerror}); mount the Redis password '
                          f'secret there.') from None
    scheme, _, rest = url.partition('://')
    return f'{scheme}://:{quote(password, safe="")}@{rest}'


def tls_files(edge: Edge) -> Tuple[str, str]:
    """The certificate and key nginx needs with TLS=on, checked to exist."""
    for name, path in (('TLS_CERT', edge.tls_cert), ('TLS_KEY', edge.tls_key)):
        if not Path(path).is_file():
            raise ConfigError(f'TLS=on but {name}={path!r} does not exist; run '
                              f'`make certs` or point {name} at your PEM file.')
    return edge.tls_cert, edge.tls_key
