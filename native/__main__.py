"""`python -m native up|down|ps|stop NAME|start NAME`: the native cluster.

up/down/ps start, stop and show the whole cluster (make local, local-down,
local-ps); stop/start NAME stop one instance with SIGTERM and bring it back
(make local-stop / local-start INSTANCE=app2), to watch failover, or stop
and start Redis (INSTANCE=redis), to watch an outage; rolling-restart
restarts every instance, one at a time (make rolling-restart).

Every command but up acts on the cluster that runs in the run directory, on
the ports and with the settings it was started on (its records there: APP,
APP_PATH and every other kit setting), whatever the environment holds by
then; a setting the environment gives another value is ignored, in one line.
"""
import argparse
import sys
from pathlib import Path

from native.cluster import ROOT, RUN_DIR, ClusterError, LocalCluster, open_files_limit
from native.processes import ProcessError
from socketio_kit.config import ConfigError, load_cluster, load_settings
from socketio_kit.config.settings import DEFAULT_APP

PAGE_ROOT = ROOT / 'page'


def up(local: LocalCluster, page: bool):
    local.start()
    settings = local.settings
    app = local.served().app
    print(f'native cluster up: {len(local.app_ports)} instances healthy '
          f'behind nginx')
    print(f'  Socket.IO: http://localhost:{settings.http_port}'
          f'{settings.protocol.socketio_path}/')
    if app != DEFAULT_APP:  # the demo page speaks only the demo's events
        print(f'  app ({app}): http://localhost:{settings.http_port}/')
    elif page:
        print(f'  page: http://localhost:{settings.page_port}/?server='
              f'http://localhost:{settings.http_port}')
    else:
        print('  page: run `make page-deps` to serve the demo page')
    for name, port in local.app_ports.items():
        metrics = local.metrics_ports.get(name)
        path = load_settings(local.instance_env(name)).observability.metrics_path
        print(f'  {name}: 127.0.0.1:{port} (pid {local.processes.pid(name)})'
              + (f'  metrics: http://127.0.0.1:{metrics}{path}' if metrics else ''))
    print(f'  nginx stub_status: http://127.0.0.1:'
          f'{settings.observability.nginx_status_port}/stub_status')
    connections = local.nginx_connections()
    if connections < settings.nginx_worker_connections:
        print(f'  nginx: {connections} connections per worker, not NGINX_WORKER_CONNECTIONS='
              f'{settings.nginx_worker_connections}: the open-files hard limit here is '
              f'{open_files_limit()}')
    logs = local.run_dir / 'logs'
    print(f'  logs: {logs.relative_to(ROOT) if logs.is_relative_to(ROOT) else logs}/'
          f'  stop: make local-down')


def stop_or_start(local: LocalCluster, command: str, name: str):
    if name == 'redis':  # an outage: the instances keep their clients
        if command == 'stop':
            local.processes.send_signal('redis')
            print('redis stopped; emits wait in each instance\'s outbox')
        else:
            local.start_redis()
            print('redis started; the outboxes are written to the stream')
        return
    if name not in local.app_ports:
        raise ClusterError(f'INSTANCE={name!r} is not one of '
                           f'{", ".join(local.app_ports)}.')
    if command == 'stop':
        local.processes.send_signal(name)
        print(f'{name} stopped; its clients moved to the other instances')
    else:
        local.start_instance(name)
        print(f'{name} started and healthy')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m native',
                                     description=__doc__)
    parser.add_argument('command', choices=('up', 'down', 'ps', 'stop', 'start',
                                            'rolling-restart'))
    parser.add_argument('instance', nargs='?', help='with stop/start: app1..appN or redis')
    parser.add_argument('--run-dir', type=Path, default=RUN_DIR,
                        help="the cluster's PID records, logs and ports (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        # The demo page is served once `make page-deps` installed its client.
        page = (PAGE_ROOT / 'node_modules' / 'socket.io-client').is_dir()
        local = LocalCluster.from_settings(
            args.run_dir, load_cluster(),
            env={'PAGE_ROOT': str(PAGE_ROOT)} if page else {})
        if args.command not in ('up', 'down') and local.ignored_notice():
            print(local.ignored_notice(), file=sys.stderr)
        if args.command == 'up':
            up(local, page)
        elif args.command in ('stop', 'start'):
            stop_or_start(local, args.command, args.instance)
        elif args.command == 'rolling-restart':
            from control.native import NativeController
            from control.rolling import rolling_restart
            local.install_requirements()  # before anything stops
            rolling_restart(NativeController(local), local.url)
            print('rolling restart done: every instance restarted, one at a time')
        elif args.command == 'down':
            local.stop()
            print('native cluster stopped')
        else:
            print(f'{"NAME":8} {"PID":>8}  {"STATE":8} HEALTH')
            for proc in local.status():
                print(f'{proc.name:8} {proc.pid or "-":>8}  '
                      f'{"running" if proc.alive else "stopped":8} {proc.health}')
            if local.started:  # it runs: what it was started with
                app = local.served()
                print(f'app: {app.app}' + (f' from APP_PATH={app.app_path}'
                                           if app.app_path else ''))
    except (ConfigError, ProcessError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
