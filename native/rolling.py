"""`make rolling-restart` in native mode: every instance restarted, one at a
time, without losing a message (the clients recover their sessions).

For each instance: SIGTERM (it drains: refuses new handshakes and drops its
sessions, whose clients reconnect elsewhere and recover), wait until it has
exited, start it, wait until it is healthy and until nginx sends it requests
again; only then the next one.
"""
import time

from native.cluster import INSTANCE_START_WAIT, ClusterError, LocalCluster, http_get


def balancer_sees(health_url: str, name: str, wait: float = 5.0) -> bool:
    """Whether nginx sent one of its /healthz requests to instance name
    within wait seconds. nginx disabled the instance for fail_timeout when it
    went away, and then lets one request probe it: a WebSocket never ends, so
    only a short request that succeeds clears the failure. Until then, nearly
    every handshake of the next instance's reconnect storm would be refused
    with "no live upstreams"."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        status, body = http_get(health_url, timeout=1)
        if status == 200 and isinstance(body, dict) and body.get('instance') == name:
            return True
        time.sleep(0.1)
    return False


def rolling_restart(local: LocalCluster, wait: float = INSTANCE_START_WAIT, say=print):
    """Restart the instances of local one at a time (see the module docstring)."""
    for name in local.app_ports:
        started = time.monotonic()
        local.processes.send_signal(name)
        deadline = started + wait
        while local.processes.is_running(name) and time.monotonic() < deadline:
            time.sleep(0.1)
        if local.processes.is_running(name):
            raise ClusterError(f'{name} did not exit within {wait:.0f}s of SIGTERM')
        local.start_instance(name, wait)
        back = balancer_sees(f'{local.url}/healthz', name)
        say(f'{name} restarted and healthy in {time.monotonic() - started:.1f}s'
            f'{"" if back else "; nginx has not sent it a request yet"}')
