"""The security parts of the balancer's config: per-address limits and TLS.

nginx/render.py fills the template's LIMIT_ZONES, LIMITS, REQUEST_LIMITS,
LISTEN_DIRECTIVES and REDIRECT_SERVER placeholders from these, with the
Cluster's `edge` settings (socketio_kit/config/security.py).
"""
from typing import Dict

from socketio_kit.config import KIT_PREFIX, Cluster
from socketio_kit.config.security import tls_files


def limit_values(cluster: Cluster) -> Dict[str, str]:
    """LIMITS for the Socket.IO location (only a new session's handshake is
    rate-limited), REQUEST_LIMITS for every other proxied location (each
    request is new: the kit's routes, the application's own HTTP)."""
    edge = cluster.edge
    zones, limits, requests = [], [], []
    if edge.connections_per_address:
        zones.append('    limit_conn_zone $binary_remote_addr '
                     'zone=per_address:10m;')
        limits.append(f'            limit_conn per_address '
                      f'{edge.connections_per_address};')
        requests.append(limits[-1])
    if edge.handshakes_per_second:
        # An empty key is not counted: only requests without a sid are.
        zones += ['    map $session_id $handshake_address {',
                  '        ""      $binary_remote_addr;',
                  '        default "";',
                  '    }',
                  f'    limit_req_zone $handshake_address zone=handshakes:10m '
                  f'rate={edge.handshakes_per_second}r/s;',
                  # Outside SOCKETIO_PATH a sid means nothing: every request
                  # counts, so `?sid=x` cannot dodge the limit.
                  f'    limit_req_zone $binary_remote_addr zone=requests:10m '
                  f'rate={edge.handshakes_per_second}r/s;']
        limits.append(f'            limit_req zone=handshakes burst='
                      f'{edge.handshake_burst} nodelay;')
        requests.append(f'            limit_req zone=requests burst='
                        f'{edge.handshake_burst} nodelay;')
    if zones:
        zones += ['    limit_conn_status 429;', '    limit_req_status 429;',
                  '    limit_conn_log_level warn;', '    limit_req_log_level warn;']
    off = '            # per-address limits off'
    return {'LIMIT_ZONES': '\n'.join(zones) or '    # (off)',
            'LIMITS': '\n'.join(limits) or off,
            'REQUEST_LIMITS': '\n'.join(requests) or off}


def listen_values(cluster: Cluster, listen: str) -> Dict[str, str]:
    """TLS off: the server listens on `listen`. TLS on: it listens with TLS on
    HTTPS_PORT and sends HSTS; `listen` keeps only KIT_PREFIX/healthz and
    redirects everything else to https."""
    edge = cluster.edge
    if not edge.tls:
        return {'LISTEN_DIRECTIVES': f'        listen {listen};',
                'REDIRECT_SERVER': ''}
    cert, key = tls_files(edge)
    host = listen.rpartition(':')[0]
    https = f'{host}:{edge.https_port}' if host else str(edge.https_port)
    port = '' if edge.https_port == 443 else f':{edge.https_port}'
    hsts = (f'        add_header Strict-Transport-Security '
            f'"max-age={edge.hsts_seconds}" always;' if edge.hsts_seconds
            else '        # HSTS off (HSTS_SECONDS=0)')
    directives = '\n'.join((
        f'        listen {https} ssl;',
        f'        ssl_certificate {cert};',
        f'        ssl_certificate_key {key};',
        '        ssl_protocols TLSv1.2 TLSv1.3;',
        '        ssl_session_cache shared:tls:10m;',
        hsts))
    redirect = f'''
    # TLS=on: plain http only redirects (and answers health checks).
    server {{
        listen {listen};
        server_name _;
        location = {KIT_PREFIX}/healthz {{
{limit_values(cluster)['REQUEST_LIMITS']}
            proxy_pass http://socketio_all;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
        location / {{
            return 301 https://$host{port}$request_uri;
        }}
    }}
'''
    return {'LISTEN_DIRECTIVES': directives, 'REDIRECT_SERVER': redirect}
