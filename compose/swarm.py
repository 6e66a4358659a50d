"""Write the Docker Swarm stack from the compose files: .generated/swarm/.

    compose/run-compose -f compose/swarm.yaml config --format json \\
        | python3 compose/swarm.py --nodes 1

reads the merged model of compose.yaml, .generated/instances.yaml and
swarm.yaml (so instances, images and settings are the compose ones, never a
second copy) and writes, in compose/.generated/swarm/:

- nginx.conf: nginx/render.py with DNS routing (nginx/routing.py): a task
  that Swarm reschedules gets a new address, so nginx finds instances by
  name through Swarm's DNS (127.0.0.11) at request time, never by an address
  fixed at start;
- stack.json: the stack file (JSON is YAML) for `docker stack deploy`.

What changes on the way: x-swarm-instance is applied to every instance;
networks become overlays without compose's fixed subnet and addresses;
the bind-mounted nginx.conf becomes a Swarm config named after its content
(a new config rolls nginx); the published port is `mode: host` (no routing
mesh here); keys Swarm ignores or refuses (build, depends_on, restart,
pull_policy) go; the demo page stays a compose-only service.
"""
import argparse
import hashlib
import json
import os
import re
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nginx import render as nginx_render  # noqa: E402
from socketio_kit.config import ConfigError  # noqa: E402

OUT = ROOT / 'compose' / '.generated' / 'swarm'
INSTANCE_RE = re.compile(r'^app[0-9]+$')
APP_PORT = 8000  # BIND of every app container, see compose.yaml
POOL = 'app-pool'  # the network alias of every instance, see swarm.yaml
SWARM_DNS = '127.0.0.11'
COMPOSE_ONLY_SERVICES = ('page',)
DROPPED_KEYS = ('build', 'pull_policy', 'depends_on', 'restart', 'profiles',
                'container_name')
NGINX_CONF = '/etc/nginx/nginx.conf'
# Label on every node that may run instance slot k (SWARM_NODES > 1).
SLOT_LABEL = 'socketio-kit.slot'


def nginx_conf(out: Path) -> bytes:
    """Render the DNS-routed nginx.conf for the nginx image's layout."""
    status = nginx_render.main([
        '--resolver', SWARM_DNS, '--instance-prefix', 'app', '--pool', POOL,
        '--app-port', str(APP_PORT), '--listen', '80',
        '--pid', '/run/nginx.pid', '--error-log', '/dev/stderr',
        '--temp-dir', '/tmp', '--mime-types', '/etc/nginx/mime.types',
        '--out', str(out)])
    if status:
        raise ConfigError('nginx/render.py refused the Swarm nginx.conf (above).')
    return out.read_bytes()


def _networks(service: dict, instance_networks=None) -> dict:
    """A service's networks without compose's fixed addresses."""
    if instance_networks is not None:
        return instance_networks
    out = {}
    for name, options in (service.get('networks') or {}).items():
        options = {k: v for k, v in (options or {}).items()
                   if k not in ('ipv4_address', 'ipv6_address')}
        out[name] = options or None
    return out


def _ports(service: dict) -> list:
    """Published ports in host mode: this kernel has no routing mesh."""
    return [{'target': int(p['target']), 'published': int(p['published']),
             'protocol': p.get('protocol', 'tcp'), 'mode': 'host'}
            for p in service.get('ports', [])]


def _slot_constraint(index: int, nodes: int) -> list:
    """Instance index (0-based) on node slot index % nodes + 1."""
    if nodes <= 1:
        return []
    return [f'node.labels.{SLOT_LABEL} == {index % nodes + 1}']


def instance_service(service: dict, template: dict, index: int, nodes: int) -> dict:
    """An instance service with x-swarm-instance applied."""
    deploy = json.loads(json.dumps(template['deploy']))
    placement = deploy.setdefault('placement', {})
    placement['constraints'] = (placement.get('constraints', []) +
                                _slot_constraint(index, nodes))
    service['deploy'] = deploy
    service['networks'] = template['networks']
    if 'command' in template:
        service['command'] = template['command']
    service['environment'] = {**service.get('environment', {}),
                              **template.get('environment', {})}
    if template.get('secrets'):
        # compose config writes secrets in the long form; keep one per name.
        merged = {s if isinstance(s, str) else s['source']: s
                  for s in [*service.get('secrets', []), *template['secrets']]}
        service['secrets'] = [s if isinstance(s, dict) else {'source': s}
                              for _, s in sorted(merged.items())]
    return service


def nginx_service(service: dict, config_name: str) -> dict:
    """nginx with its config as a Swarm config instead of a bind mount."""
    mounts = [v for v in service.pop('volumes', [])
              if v.get('target') != NGINX_CONF]
    if mounts:
        raise ConfigError(f'nginx has mounts Swarm cannot carry to other nodes: {mounts}')
    service['configs'] = [{'source': config_name, 'target': NGINX_CONF, 'mode': 0o444}]
    service.get('labels', {}).pop('kit.nginx-conf-sha256', None)
    return service


def generated_secret(path: Path) -> str:
    """A random secret in a file only its owner reads, written once."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as out:
            out.write(secrets.token_urlsafe(48))
    return str(path)


def _secret_names(service: dict) -> list:
    return [s if isinstance(s, str) else s['source'] for s in service.get('secrets', [])]


def stack(model: dict, nginx_sha: str, nodes: int, secret_dir: Path) -> dict:
    """The stack file for the merged compose model."""
    template = model.get('x-swarm-instance')
    if not template:
        raise ConfigError('x-swarm-instance is missing: merge compose/swarm.yaml '
                          '(compose/run-compose -f compose/swarm.yaml config).')
    config_name = f'nginx_conf_{nginx_sha[:12]}'
    instances = sorted((n for n in model['services'] if INSTANCE_RE.match(n)),
                       key=lambda n: int(n[3:]))
    services = {}
    for name, service in model['services'].items():
        if name in COMPOSE_ONLY_SERVICES:
            continue
        service = {k: v for k, v in service.items()
                   if k not in DROPPED_KEYS and v is not None}
        service['networks'] = _networks(service)
        if 'ports' in service:
            service['ports'] = _ports(service)
        if name in instances:
            service = instance_service(service, template, instances.index(name), nodes)
        elif name == 'nginx':
            service = nginx_service(service, config_name)
        services[name] = service
    attached = {n for s in services.values() for n in s['networks']}
    networks = {name: {'driver': 'overlay',
                       **({'internal': True} if net.get('internal') else {})}
                for name, net in model.get('networks', {}).items() if name in attached}
    # compose.yaml's own secrets (the Redis password), and those only the
    # stack has (x-swarm-instance's), generated here.
    declared = {name: secret['file'] for name, secret in model.get('secrets', {}).items()}
    used = {n for s in services.values() for n in _secret_names(s)}
    secrets = {name: {'file': declared.get(name) or generated_secret(secret_dir / name)}
               for name in sorted(used)}
    # Named volumes (Redis's data, if compose.yaml gives it one): local to
    # the node the task runs on; compose's `name:` goes, the stack names them.
    mounted = {v['source'] for s in services.values() for v in s.get('volumes', [])
               if isinstance(v, dict) and v.get('type') == 'volume'}
    volumes = {name: {k: v for k, v in (volume or {}).items() if k != 'name'}
               for name, volume in model.get('volumes', {}).items() if name in mounted}
    out = {'version': '3.9', 'services': services, 'networks': networks,
           'configs': {config_name: {'file': 'nginx.conf'}}}
    if volumes:
        out['volumes'] = volumes
    if secrets:
        out['secrets'] = secrets
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('model', nargs='?', default='-',
                        help='`docker compose config --format json` output (default: stdin)')
    parser.add_argument('--nodes', type=int, default=1,
                        help='nodes labelled socketio-kit.slot=1..N to spread '
                             'the instances over (SWARM_NODES; 1: no constraint)')
    parser.add_argument('--out', type=Path, default=OUT)
    parser.add_argument('--secret-path', metavar='NAME',
                        help='print the file of the generated secret NAME '
                             '(jwt_secret: what `make swarm-token` signs with) and exit')
    args = parser.parse_args(argv)
    if args.secret_path:
        print(args.out / 'secrets' / args.secret_path)
        return 0
    try:
        text = sys.stdin.read() if args.model == '-' else Path(args.model).read_text()
        model = json.loads(text)
        if not 1 <= args.nodes <= 64:
            raise ConfigError(f'SWARM_NODES={args.nodes} is out of range; set it '
                              f'to the number of nodes, 1 to 64.')
        args.out.mkdir(parents=True, exist_ok=True)
        sha = hashlib.sha256(nginx_conf(args.out / 'nginx.conf')).hexdigest()
        result = stack(model, sha, args.nodes, args.out / 'secrets')
    except (ConfigError, ValueError, KeyError) as exc:
        print(f'compose/swarm.py: {exc}', file=sys.stderr)
        return 2
    (args.out / 'stack.json').write_text(json.dumps(result, indent=2) + '\n')
    names = [n for n in result['services'] if INSTANCE_RE.match(n)]
    print(f'compose/swarm.py: {len(names)} instances ({", ".join(names)}), '
          f'{args.nodes} node(s) -> {args.out}/stack.json, nginx.conf',
          file=sys.stderr)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
