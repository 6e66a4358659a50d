"""`make rolling-restart`: restart every instance, one at a time, losing
nothing (the clients recover their sessions on the other instances).

For each instance: stop it gracefully (SIGTERM, or `docker stop`: it drains,
refusing new handshakes and dropping its sessions, whose clients reconnect
elsewhere and recover), wait until it has exited, start it, wait until it is
healthy and until nginx sends it requests again; only then the next one.
Works on the native cluster and on the compose project (control.detect).
"""
import argparse
import json
import sys
import time
import urllib.error
import urllib.request

from control.base import KIT_PREFIX, Controller


def balancer_sees(url: str, name: str, wait: float = 5.0) -> bool:
    """Whether nginx sent one of its health requests to instance name
    within wait seconds. nginx disabled the instance for fail_timeout when it
    went away, then lets one request probe it; a WebSocket never ends, so
    only a short request that succeeds clears the failure. Until then, nearly
    every handshake of the next instance's reconnect storm would be refused
    with "no live upstreams"."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f'{url}{KIT_PREFIX}/healthz', timeout=1) as reply:
                if json.load(reply).get('instance') == name:
                    return True
        except (OSError, ValueError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    return False


def rolling_restart(control: Controller, url: str, say=print):
    """Restart the instances of control one at a time (module docstring)."""
    for name in control.instances():
        started = time.monotonic()
        control.stop(name)          # returns once it has exited
        control.start(name)         # returns once it is healthy
        back = balancer_sees(url, name)
        say(f'{name} restarted and healthy in {time.monotonic() - started:.1f}s'
            f'{"" if back else "; nginx has not sent it a request yet"}')


def main(argv=None) -> int:
    from control.detect import PROJECT, detect
    from control.native import NativeController
    from socketio_kit.config import load_cluster
    parser = argparse.ArgumentParser(prog='python -m control.rolling', description=__doc__)
    parser.add_argument('--project', default=PROJECT, help='compose project')
    args = parser.parse_args(argv)
    control = detect('auto', project=args.project)
    if not control.instances():
        print('rolling-restart: no cluster runs (start one with make up)')
        return 2
    url = getattr(control, 'url', None) or f'http://127.0.0.1:{load_cluster().http_port}'
    if isinstance(control, NativeController):
        # The instances start again as the cluster was started (make local),
        # with APP_PATH/requirements.txt installed first if it changed.
        if control.local.ignored_notice():
            print(control.local.ignored_notice(), file=sys.stderr)
        try:
            control.local.install_requirements()
        except RuntimeError as exc:  # pip failed: nothing was stopped
            print(f'rolling-restart: {exc}', file=sys.stderr)
            return 2
    print(f'rolling restart of the {control.kind} cluster: {", ".join(control.instances())}')
    rolling_restart(control, url)
    print('rolling restart done: every instance restarted, one at a time')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
