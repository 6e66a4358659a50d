"""`python -m doctor URL --origin ORIGIN [--path] [--namespace] [--json] [--slow]
[--token] [--ca]`."""
import argparse
import json
import os
import sys
from typing import List, Optional

from doctor.probe import Probe
from doctor.result import FAIL, STATUSES, Options, Result
from doctor.runner import run

COLORS = {'PASS': '\033[32m', 'WARN': '\033[33m', 'FAIL': '\033[31m',
          'SKIP': '\033[2m'}


def line(result: Result, color: bool) -> str:
    status = result.status
    if color:
        status = f'{COLORS[status]}{status}\033[0m'
    text = f'{status} {result.check:<9} {result.saw}'
    if result.fix and result.status != 'PASS':
        text += f' -> fix: {result.fix}'
    return text


def summary(results: List[Result]) -> str:
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    return ', '.join(f'{n} {s}' for s, n in counts.items())


def parse_args(argv: Optional[List[str]]):
    parser = argparse.ArgumentParser(
        prog='python -m doctor',
        description='Diagnose a Socket.IO deployment as a browser on ORIGIN '
                    'would see it. Exit code 1 on any FAIL.')
    parser.add_argument('url', help='the Socket.IO server or balancer, e.g. '
                        'http://127.0.0.1:8080')
    parser.add_argument('--origin', required=True,
                        help='the origin of the page that connects, e.g. '
                        'http://localhost:8081')
    parser.add_argument('--path', default='/socket.io',
                        help='Engine.IO path (default /socket.io)')
    parser.add_argument('--namespace', default='/',
                        help='Socket.IO namespace to connect (default /)')
    parser.add_argument('--json', action='store_true',
                        help='print one JSON document instead of lines')
    parser.add_argument('--slow', action='store_true',
                        help='also hold a long-poll and an idle WebSocket past '
                        'pingInterval + pingTimeout (takes that long)')
    parser.add_argument('--timeout', type=float, default=5.0,
                        help='seconds per request (default 5)')
    parser.add_argument('--connections', type=int, default=5,
                        help='sessions for the sticky check (default 5)')
    parser.add_argument('--token', default='',
                        help='a token to connect with (auth: {token}), for a '
                        'server with AUTH_MODE=jwt')
    parser.add_argument('--ca', default=None,
                        help='a CA certificate (PEM) to verify https with, '
                        'e.g. certs/ca.crt from make certs')
    args = parser.parse_args(argv)
    if args.ca:  # every TLS context of this run (doctor/wire.py, tls check)
        os.environ['SSL_CERT_FILE'] = args.ca
    if not 1 <= args.connections <= 50:
        parser.error('--connections must be from 1 to 50')
    options = Options(args.url, args.origin, args.path, args.namespace,
                      args.slow, args.timeout, args.connections,
                      token=args.token)
    try:
        return args, Probe.parse(options)
    except ValueError as exc:
        parser.error(str(exc))


def main(argv: Optional[List[str]] = None) -> int:
    args, probe = parse_args(argv)
    color = sys.stdout.isatty() and not args.json
    if not args.json:
        print(f'doctor: {args.url} path {probe.path} namespace '
              f'{probe.namespace} as a page on {args.origin}', flush=True)
    probe = probe.open()
    results = run(probe, None if args.json else
                  lambda r: print(line(r, color), flush=True))
    failed = any(r.status == FAIL for r in results)
    if args.json:
        print(json.dumps({
            'url': args.url, 'origin': args.origin, 'path': probe.path,
            'namespace': probe.namespace, 'kit_instance': probe.kit,
            'ok': not failed, 'results': [r.as_dict() for r in results],
        }, indent=2))
    else:
        kit = f' (the kit: /_kit/healthz answered by {probe.kit})' if probe.kit else ''
        print(f'{summary(results)}{kit}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
