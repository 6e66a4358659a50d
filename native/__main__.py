"""`python -m native up|down|ps|stop NAME|start NAME`: the native cluster.

up/down/ps start, stop and show the whole cluster (make local, local-down,
local-ps); stop/start NAME stop one instance with SIGTERM and bring it back
(make local-stop / local-start INSTANCE=app2), to watch failover.
"""
import argparse
import sys
from pathlib import Path

from app.config import ConfigError, load_cluster
from native.cluster import ROOT, ClusterError, LocalCluster

RUN_DIR = ROOT / '.run' / 'local'
PAGE_ROOT = ROOT / 'page'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m native',
                                     description=__doc__)
    parser.add_argument('command', choices=('up', 'down', 'ps', 'stop', 'start'))
    parser.add_argument('instance', nargs='?', help='with stop/start: app1..appN')
    args = parser.parse_args(argv)
    try:
        # The demo page is served once `make page-deps` installed its client.
        page = (PAGE_ROOT / 'node_modules' / 'socket.io-client').is_dir()
        cluster = LocalCluster.from_settings(
            RUN_DIR, load_cluster(),
            env={'PAGE_ROOT': str(PAGE_ROOT)} if page else {})
        if args.command == 'up':
            cluster.start()
            print(f'native cluster up: {len(cluster.app_ports)} instances '
                  f'healthy behind nginx')
            c = cluster.cluster
            print(f'  Socket.IO: http://localhost:{c.http_port}'
                  f'{c.socketio_path}/')
            print(f'  page: http://localhost:{c.page_port}/?server='
                  f'http://localhost:{c.http_port}' if page else
                  '  page: run `make page-deps` to serve the demo page')
            for name, port in cluster.app_ports.items():
                print(f'  {name}: 127.0.0.1:{port} (pid {cluster.pid(name)})')
            print(f'  logs: {Path(RUN_DIR, "logs").relative_to(ROOT)}/  '
                  f'stop: make local-down')
        elif args.command in ('stop', 'start'):
            if args.instance not in cluster.app_ports:
                raise ClusterError(f'INSTANCE={args.instance!r} is not one of '
                                   f'{", ".join(cluster.app_ports)}.')
            if args.command == 'stop':
                cluster.signal(args.instance)
                print(f'{args.instance} stopped; its clients moved to the '
                      f'other instances')
            else:
                cluster.start_instance(args.instance)
                print(f'{args.instance} started and healthy')
        elif args.command == 'down':
            cluster.stop()
            print('native cluster stopped')
        else:
            print(f'{"NAME":8} {"PID":>8}  {"STATE":8} HEALTH')
            for p in cluster.status():
                print(f'{p.name:8} {p.pid or "-":>8}  '
                      f'{"running" if p.alive else "stopped":8} {p.health}')
    except (ConfigError, ClusterError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
