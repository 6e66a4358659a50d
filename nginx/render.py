"""Render nginx/nginx.conf.template for a list of instances.

The same renderer serves native mode (instances on loopback ports, files under
.run/) and compose (instances at fixed addresses in the edge network, so nginx
starts even while one is down, see compose/render.py; files where the nginx
image expects them):

    python -m nginx.render --instance app1=127.0.0.1:8001 \
        --instance app2=127.0.0.1:8002 --listen 8080 --out .run/nginx.conf

Timeouts, the Socket.IO path and sizes come from socketio_kit.config.load_cluster(),
which refuses a proxy timeout too short for the configured ping values.
"""
import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from nginx.routing import Resolved, static_values
from nginx.security import limit_values, listen_values
from socketio_kit.config import INSTANCE_NAME_RE, KIT_PREFIX, Cluster, ConfigError, load_cluster
from socketio_kit.config.security import tls_files

TEMPLATE = Path(__file__).with_name('nginx.conf.template')
PLACEHOLDER = re.compile(r'{{ ([A-Z_]+) }}')


@dataclass(frozen=True)
class Instance:
    name: str
    address: str  # host:port as nginx should reach it


@dataclass(frozen=True)
class Paths:
    """Where this nginx keeps its pid, logs and temp files."""
    pid_file: str = '/run/nginx.pid'
    error_log: str = '/dev/stderr'
    access_log: str = 'off'
    temp_dir: str = '/tmp/nginx'
    mime_types: str = '/etc/nginx/mime.types'
    user: Optional[str] = None  # nginx `user` directive; None: the build's default


def parse_instance(text: str) -> Instance:
    name, sep, address = text.partition('=')
    if not sep or not INSTANCE_NAME_RE.match(name) or ':' not in address:
        raise ConfigError(f'--instance {text!r} is not NAME=HOST:PORT with a '
                          f'valid instance name, e.g. app1=127.0.0.1:8001.')
    return Instance(name, address)


def _page_server(page_listen: Optional[str], page_root: Optional[str],
                 tls_files=None) -> str:
    if not page_listen or not page_root:
        return ''
    listen = f'listen {page_listen};'
    if tls_files:  # TLS=on: the page too, so page and API are the same site
        listen = (f'listen {page_listen} ssl;\n'
                  f'        ssl_certificate {tls_files[0]};\n'
                  f'        ssl_certificate_key {tls_files[1]};')
    return f'''
    # The demo page, on its own origin: the browser connects cross-origin.
    # Only the page and the socket.io-client bundle are served.
    server {{
        {listen}
        server_name _;
        root {page_root};
        add_header Cache-Control no-store;
        location = / {{
            try_files /index.html =404;
        }}
        location ~ ^/(index\\.html|app\\.js)$ {{
        }}
        location /node_modules/socket.io-client/dist/ {{
        }}
        location / {{
            return 404;
        }}
    }}'''


PAGE_CONF = """\
# The demo page on its own, for a deployment that runs it as a separate
# server (compose's page service). Rendered by nginx/render.py --page-only.
{user}
worker_processes 1;
pid {pid};
error_log {error_log} warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log {access_log};
    client_body_temp_path {temp}/client_body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    server_tokens off;
    include {mime};
    default_type application/octet-stream;
{server}
}}
"""


def _user_directive(paths: Paths) -> str:
    return (f'user {paths.user};' if paths.user else
            "# user: the nginx build's default")


def render_page(page_listen: str, page_root: str, paths: Paths = Paths()) -> str:
    """A whole nginx.conf that serves only the demo page."""
    return PAGE_CONF.format(
        user=_user_directive(paths), pid=paths.pid_file,
        error_log=paths.error_log, access_log=paths.access_log,
        temp=paths.temp_dir, mime=paths.mime_types,
        server=_page_server(page_listen, page_root))


def render(instances: Sequence[Instance], cluster: Cluster, listen: str,
           paths: Paths = Paths(), page_listen: Optional[str] = None,
           page_root: Optional[str] = None, status_listen: Optional[str] = None,
           routing: Optional[Resolved] = None) -> str:
    """Return the nginx.conf text for these instances, or, with routing, for
    instances found through DNS (nginx/routing.py; instances then unused);
    stub_status listens on status_listen (default: NGINX_STATUS_PORT on every
    address)."""
    if routing is not None:
        instances = ()
    elif not instances:
        raise ConfigError('no instances to balance; pass at least one '
                          '--instance NAME=HOST:PORT.')
    names = [i.name for i in instances]
    if len(set(names)) != len(names):
        raise ConfigError(f'instance names must be unique, got {names}.')
    upstreams = '\n\n'.join(
        f'    upstream socketio_{i.name} {{\n'
        f'        server {i.address};\n'
        f'        keepalive 16;\n'
        f'    }}' for i in instances)
    values = {
        'RLIMIT_NOFILE': str(cluster.nginx_worker_connections + 1024),
        'WORKER_CONNECTIONS': str(cluster.nginx_worker_connections),
        'USER': _user_directive(paths),
        'PID_FILE': paths.pid_file,
        'ERROR_LOG': paths.error_log,
        'ACCESS_LOG': paths.access_log,
        'TEMP_DIR': paths.temp_dir,
        'MIME_TYPES': paths.mime_types,
        'SID_MAP': '\n'.join(f'        "~^{i.name}\\." socketio_{i.name};'
                             for i in instances),
        'HEALTH_MAP': '\n'.join(f'        {KIT_PREFIX}/instance/{i.name}/healthz '
                                f'socketio_{i.name};' for i in instances),
        'KIT_PREFIX': KIT_PREFIX,
        'INSTANCE_UPSTREAMS': upstreams,
        **limit_values(cluster),
        **listen_values(cluster, listen),
        'PING_WINDOW': str(cluster.protocol.ping_interval + cluster.protocol.ping_timeout),
        'PROXY_TIMEOUT': str(cluster.proxy_timeout),
        'MAX_BODY': str(cluster.protocol.max_payload_bytes),
        'SOCKETIO_PATH': cluster.protocol.socketio_path,
        'PAGE_SERVER': _page_server(
            page_listen, page_root,
            tls_files(cluster.edge) if cluster.edge.tls else None),
        'STATUS_LISTEN': status_listen or str(cluster.observability.nginx_status_port),
    }
    values.update(static_values([i.address for i in instances])
                  if routing is None else routing.values())
    text = TEMPLATE.read_text()
    missing = set(PLACEHOLDER.findall(text)) - set(values)
    if missing:
        raise ConfigError(f'template placeholders without a value: {missing}')
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--instance', action='append', default=[],
                        help='NAME=HOST:PORT, once per instance')
    parser.add_argument('--resolver', default=None,
                        help='find instances through this DNS server at request '
                             'time (Swarm, Kubernetes) instead of --instance')
    parser.add_argument('--instance-prefix', default='app-',
                        help='with --resolver: instance names are PREFIX<digits>')
    parser.add_argument('--instance-domain', default='',
                        help='with --resolver: domain appended to an instance name')
    parser.add_argument('--pool', default=None,
                        help='with --resolver: name resolving to every ready instance')
    parser.add_argument('--app-port', type=int, default=8000,
                        help='with --resolver: port of every instance')
    parser.add_argument('--resolver-valid', type=int, default=2,
                        help='with --resolver: seconds an answer is trusted')
    parser.add_argument('--page-only', action='store_true',
                        help='render a config that serves only the demo page '
                             '(needs --page-listen and --page-root)')
    parser.add_argument('--listen', default=None,
                        help='nginx listen address (default: HTTP_PORT)')
    parser.add_argument('--out', required=True, help='file to write')
    parser.add_argument('--pid', default=Paths.pid_file)
    parser.add_argument('--error-log', default=Paths.error_log)
    parser.add_argument('--access-log', default=Paths.access_log)
    parser.add_argument('--temp-dir', default=Paths.temp_dir)
    parser.add_argument('--mime-types', default=Paths.mime_types)
    parser.add_argument('--page-listen', default=None,
                        help='serve the demo page on this address too')
    parser.add_argument('--page-root', default=None,
                        help='directory of the demo page')
    args = parser.parse_args(argv)
    paths = Paths(args.pid, args.error_log, args.access_log, args.temp_dir,
                  args.mime_types)
    try:
        if args.page_only:
            if not args.page_listen or not args.page_root:
                raise ConfigError('--page-only needs --page-listen and '
                                  '--page-root.')
            text = render_page(args.page_listen, args.page_root, paths)
        else:
            text = _render_balancer(args, paths)
    except ConfigError as exc:
        print(f'config error: {exc}', file=sys.stderr)
        return 2
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    return 0


def _render_balancer(args, paths: Paths) -> str:
    instances = tuple(parse_instance(i) for i in args.instance)
    routing = None
    if args.resolver:
        if instances:
            raise ConfigError('--resolver finds the instances itself; drop --instance.')
        routing = Resolved(args.resolver, args.instance_prefix, args.instance_domain,
                           args.pool or '', args.app_port, args.resolver_valid)
    cluster = load_cluster()
    return render(instances, cluster, args.listen or str(cluster.http_port),
                  paths, args.page_listen, args.page_root, routing=routing)


if __name__ == '__main__':
    raise SystemExit(main())
