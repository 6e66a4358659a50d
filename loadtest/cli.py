"""`python -m loadtest SCENARIO --url URL ...`: argument parsing and the run.

`main(argv, controller=None)` is the Python entry point the tests use; a
controller (anything with kill/stop/start(name)) replaces --kill-via.
Exit status: 0 done, 1 the run failed, 2 transport mismatch (asked for one
transport, got another), 3 the generator was saturated or lagging (invalid).
"""
import argparse
import sys
import time
from pathlib import Path

from loadtest import control, environment, report
from loadtest.client import TRANSPORTS
from loadtest.runner import SCENARIOS, Config, RunError, Runner

EXIT_OK, EXIT_FAILED, EXIT_TRANSPORT, EXIT_SATURATED = 0, 1, 2, 3


def parser() -> argparse.ArgumentParser:
    d = Config()
    ap = argparse.ArgumentParser(
        prog='python -m loadtest', description=__doc__.split('\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument('scenario', choices=SCENARIOS)
    ap.add_argument('--url', default=d.url, help='balancer URL')
    ap.add_argument('--path', default=d.path, help='Socket.IO path')
    ap.add_argument('--origin', default=d.origin,
                    help='Origin header (must be in CORS_ALLOWED_ORIGINS); '
                         '"" sends none')
    ap.add_argument('--transport', choices=TRANSPORTS, default=d.transport,
                    help='websocket: direct; polling: long-polling only; '
                         'upgrade: polling then upgrade, like a browser')
    ap.add_argument('-c', '--clients', type=int, default=d.clients)
    ap.add_argument('-s', '--senders', type=int, default=d.senders)
    ap.add_argument('-r', '--rate', type=float, default=d.rate,
                    help='broadcasts per second, all senders together')
    ap.add_argument('-d', '--duration', type=float, default=d.duration,
                    help='seconds of sending')
    ap.add_argument('--drain', type=float, default=d.drain,
                    help='seconds to wait for deliveries after sending stops')
    ap.add_argument('--room', default=d.room)
    ap.add_argument('-p', '--procs', type=int, default=d.procs,
                    help='generator processes to spread the clients over')
    ap.add_argument('--connect-rate', type=float, default=d.connect_rate,
                    help='new connections per second, all processes together')
    ap.add_argument('--connect-concurrency', type=int, default=d.connect_concurrency,
                    help='connection attempts in flight per process')
    ap.add_argument('--connect-timeout', type=float, default=d.connect_timeout)
    ap.add_argument('--reconnect-delay', type=float, default=d.reconnect_delay,
                    help='reconnect: first retry delay (s), doubled per attempt, '
                         'jittered 50-100%%')
    ap.add_argument('--reconnect-delay-max', type=float, default=d.reconnect_delay_max)
    ap.add_argument('--kill-via', choices=('auto', 'native', 'docker', 'none'),
                    default=d.kill_via, help='how to reach instances (kill, '
                    'restore, RSS)')
    ap.add_argument('--kill-mode', choices=('kill', 'stop'), default=d.kill_mode,
                    help='kill: SIGKILL / docker kill; stop: SIGTERM / docker stop')
    ap.add_argument('--kill-after', type=float, default=d.kill_after,
                    help='seconds into the broadcast to kill the instance')
    ap.add_argument('--victim', default=None,
                    help='instance to kill (default: fewest senders, most clients)')
    ap.add_argument('--deadline', type=float, default=d.deadline,
                    help='seconds a client may take to be back and receiving')
    ap.add_argument('--no-restore', dest='restore', action='store_false',
                    help='leave the killed instance down')
    ap.add_argument('--hold', type=float, default=d.hold,
                    help='ramp: seconds to hold the clients before reading RSS')
    ap.add_argument('--max-cpu', type=float, default=d.max_cpu,
                    help='generator CPU (fraction of a core per process) above '
                         'which the result is invalid')
    ap.add_argument('--max-lag-ms', type=float, default=d.max_lag_ms,
                    help='generator event-loop lag (p99, ms) above which the '
                         'result is invalid')
    ap.add_argument('--run-dir', default=None,
                    help='native cluster run directory (default .run/local)')
    ap.add_argument('--project', default=d.project, help='compose project name')
    ap.add_argument('--out', default=None,
                    help='result JSON (default results/SCENARIO-TIME.json)')
    ap.add_argument('--no-plots', dest='plots', action='store_false')
    ap.add_argument('-q', '--quiet', action='store_true')
    return ap


def config_from_args(args, argv) -> Config:
    if args.clients < 1 or args.procs < 1:
        raise SystemExit('--clients and --procs must be at least 1')
    return Config(
        scenario=args.scenario, url=args.url, path=args.path.rstrip('/') or '/',
        origin=args.origin or None, transport=args.transport,
        clients=args.clients, senders=max(1, min(args.senders, args.clients)),
        rate=args.rate, duration=args.duration, drain=args.drain, room=args.room,
        procs=min(args.procs, args.clients), connect_rate=args.connect_rate,
        connect_concurrency=args.connect_concurrency,
        connect_timeout=args.connect_timeout,
        reconnect_delay=args.reconnect_delay,
        reconnect_delay_max=args.reconnect_delay_max, kill_via=args.kill_via,
        kill_mode=args.kill_mode, kill_after=args.kill_after, victim=args.victim,
        deadline=args.deadline, restore=args.restore, hold=args.hold,
        max_cpu=args.max_cpu, max_lag_ms=args.max_lag_ms, run_dir=args.run_dir, project=args.project,
        command=environment.command_line(argv), quiet=args.quiet)


def run(argv=None, controller=None) -> dict:
    """Parse argv, run the scenario, write JSON and plots; return the result
    (with `exit_code`, `out` and `plots` added)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    cfg = config_from_args(args, argv)
    if controller is None:
        needs = args.scenario in ('reconnect',)
        try:
            ctl = control.detect(args.kill_via, args.run_dir, args.project)
        except RuntimeError as exc:
            raise RunError(str(exc)) from None
        if needs and ctl.kind == 'none':
            raise RunError('reconnect needs a way to kill an instance: start the '
                           'cluster (make local / make up) or pass --kill-via.')
    else:
        ctl = controller if isinstance(controller, control.Controller) \
            else control.FixtureController(controller)
    result = Runner(cfg, ctl).run()
    out = Path(args.out or f'results/{args.scenario}-'
               f'{time.strftime("%Y%m%d-%H%M%S")}.json')
    if result.get('transport_mismatch'):
        code = EXIT_TRANSPORT
    elif not result['valid']:
        code = EXIT_SATURATED
    else:
        code = EXIT_OK
    result['exit_code'] = code
    result['out'] = str(out)
    result['plots'] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.plots:
        result['plots'] = [str(p) for p in report.plot(result, out.with_suffix(''))]
    report.write_json(result, out)
    return result


def main(argv=None, controller=None) -> int:
    try:
        result = run(argv, controller)
    except RunError as exc:
        print(f'loadtest: error: {exc}', file=sys.stderr)
        return EXIT_FAILED
    print(report.summary_table(result))
    print(f'result: {result["out"]}' + (f'  plots: {", ".join(result["plots"])}'
                                        if result['plots'] else ''))
    if result['exit_code'] == EXIT_TRANSPORT:
        print('\nFAILED: the clients did not get the transport they asked for; '
              'these numbers are not WebSocket numbers.', file=sys.stderr)
    elif result['exit_code'] == EXIT_SATURATED:
        print('\nINVALID: ' + '; '.join(result['problems']), file=sys.stderr)
    return result['exit_code']
