"""What only the Swarm stack has: services and tasks, rescheduling, rolling
updates, `docker stack rm`.

The stack is `make test-swarm`'s own (a free port, its own stack name); tasks
are inspected and killed with the Docker SDK. The last test removes the stack.
"""
import json
import os
import subprocess
import time

import jwt
import pytest

from tests.conftest import swarm_controller
from tests.integration.recovery_support import NodeClients, Sender, accounting, busiest
from tests.support import (
    ROOT,
    broadcast_round,
    clients,
    new_room,
    run_doctor,
    websocket_upgrade,
)

pytestmark = pytest.mark.only_target('swarm')


@pytest.fixture(scope='module')
def swarm(request):
    """The stack's SwarmController (every service, by name)."""
    return swarm_controller(request.config)


def _spec(service) -> dict:
    service.reload()
    return service.attrs['Spec']


def _edge_address(container) -> str:
    container.reload()
    networks = container.attrs['NetworkSettings']['Networks']
    return next(n['IPAddress'] for name, n in networks.items() if name.endswith('_edge'))


def test_every_service_is_dnsrr_and_only_nginx_publishes_in_host_mode(swarm):
    services = swarm.services()
    assert set(services) == {'redis', 'nginx', *swarm.instances()}
    assert len(swarm.instances()) >= 3
    port = int(swarm.url.rsplit(':', 1)[1])
    for name, service in services.items():
        spec = _spec(service)
        # No VIP: this kernel has no IPVS (ENVIRONMENT.md).
        assert spec['EndpointSpec']['Mode'] == 'dnsrr', name
        ports = spec['EndpointSpec'].get('Ports', [])
        if name == 'nginx':
            assert [(p['PublishMode'], p['PublishedPort']) for p in ports] == [('host', port)]
        else:
            assert ports == [], name
        # Nothing bind-mounted from this host: a stack must run on any node
        # (Redis keeps its append-only file on a named volume).
        mounts = spec['TaskTemplate']['ContainerSpec'].get('Mounts') or []
        assert [m['Type'] for m in mounts] in ([], ['volume']), (name, mounts)
        assert not mounts or name == 'redis', (name, mounts)


def test_instances_update_one_at_a_time_draining_first_and_hold_the_secret(swarm):
    for name in swarm.instances():
        spec = _spec(swarm.service(name))
        task = spec['TaskTemplate']
        assert spec['Mode']['Replicated']['Replicas'] == 1
        assert task['Placement']['MaxReplicas'] == 1
        update = spec['UpdateConfig']
        assert (update['Parallelism'], update['Order'], update['FailureAction']) == \
            (1, 'stop-first', 'rollback')
        # Longer than gunicorn's graceful drain (5 s): SIGKILL comes after it.
        assert task['ContainerSpec']['StopGracePeriod'] >= 10 * 10**9
        assert {'INSTANCE_NAME=' + name, 'JWT_SECRET_FILE=/run/secrets/jwt_secret'} <= \
            set(task['ContainerSpec']['Env'])
        assert 'jwt_secret' in [s['File']['Name'] for s in task['ContainerSpec']['Secrets']]
    # The secret is a file in the task, readable by the app's user only
    # through the mount; it is in no environment variable.
    container = swarm.container(swarm.instances()[0])
    result = container.exec_run(['sh', '-c', 'test -s /run/secrets/jwt_secret && id -u'])
    assert result.exit_code == 0 and result.output.strip() != b'0'
    # It waited for Redis, then exec'd the one start command.
    assert b'gunicorn' in container.exec_run(['cat', '/proc/1/cmdline']).output
    nginx = _spec(swarm.service('nginx'))['TaskTemplate']['ContainerSpec']
    assert [c['File']['Name'] for c in nginx['Configs']] == ['/etc/nginx/nginx.conf']


def test_the_stack_runs_jwt_by_default_and_refuses_a_client_without_token(swarm):
    if (os.environ.get('AUTH_MODE') or 'jwt') != 'jwt':
        pytest.skip(f"AUTH_MODE={os.environ['AUTH_MODE']} overrides the stack's default")
    for name in swarm.instances():
        assert 'AUTH_MODE=jwt' in _spec(swarm.service(name))['TaskTemplate']['ContainerSpec']['Env']
    forged = jwt.encode({'sub': 'x', 'exp': int(time.time()) + 60}, 'not-the-secret-' * 3)
    for auth, why in ((None, 'missing token'), ({'token': forged}, 'bad signature')):
        resp, ws = websocket_upgrade(swarm.url)
        assert ws is not None, resp.brief()
        try:
            assert ws.recv(5).startswith('0')
            ws.send('40' + (json.dumps(auth) if auth else ''))
            assert json.loads(ws.recv(5)[2:]) == {'message': f'unauthorized: {why}'}
        finally:
            ws.close()


def test_redis_is_on_the_back_network_only(swarm):
    networks = _spec(swarm.service('redis'))['TaskTemplate']['Networks']
    names = {swarm.client.networks.get(n['Target']).name for n in networks}
    assert names == {f'{swarm.stack}_back'}
    assert swarm.client.networks.get(f'{swarm.stack}_back').attrs['Internal'] is True
    # The Redis password came in as a Swarm secret: without it, NOAUTH.
    probe = swarm.container(swarm.instances()[0]).exec_run(
        ['bash', '-c', 'exec 3<>/dev/tcp/redis/6379; printf "PING\\r\\n" >&3; '
                       'read -r line <&3; echo "$line"'])
    assert probe.output.startswith(b'-NOAUTH'), probe.output


def test_doctor_finds_no_fault_on_the_swarm_stack(swarm):
    # As `make doctor` reaches it: localhost, the page's site (cookies check).
    code, _, checks = run_doctor(swarm.url.replace('127.0.0.1', 'localhost'))
    assert code == 0, checks
    assert {r['status'] for r in checks.values()} == {'PASS'}, checks


def test_killed_task_is_rescheduled_and_its_clients_recover_everything(swarm):
    """SIGKILL of a task under 20 msgs/s: its socket.io-clients (Node, with
    connection-state recovery) come back on the other instances with
    `recovered` true and every message exactly once, in order; Swarm starts
    a new task, and nginx reaches it by name without a reload."""
    room = new_room()
    node = NodeClients(swarm.url, 12, room)
    try:
        state = node.wait_ready()
        victim, spread = busiest(state)
        senders = [Sender.away_from(swarm.url, victim, f'snd-{k}', room, rate=10)
                   for k in range(2)]
        old = swarm.container(victim)
        old_address = _edge_address(old)
        nginx = swarm.container('nginx')
        with clients(swarm.url, 3 * len(swarm.instances()), [victim],
                     reconnection=True) as cs:
            on_victim = [c for c in cs if c.instance == victim]
            for sender in senders:
                sender.start()
            time.sleep(1)
            killed_at = time.monotonic()
            old.kill()  # SIGKILL, through the SDK: no drain
            back = []
            for c in on_victim:
                welcome = c.welcomes.get(timeout=max(0.1, 10 - (time.monotonic() - killed_at)))
                assert welcome['instance'] != victim
                back.append(welcome['received_at'] - killed_at)
            time.sleep(max(0.0, 4 - (time.monotonic() - killed_at)))
            for sender in senders:
                sender.finish()
            assert not any(sender.errors for sender in senders), [s.errors for s in senders]
            time.sleep(1.5)
            report = node.ask('report')
            new = swarm.wait_healthy(victim, 90, not_id=old.id)
            rescheduled = time.monotonic() - killed_at
            swarm.wait_routed(victim)
            broadcast_round(cs, new_room(), count=3)
        counts = accounting(report, {s.name: s.sent for s in senders})
        moved = [c for c in report['clients'] if c['i'] in spread[victim]]
        print(f'{len(on_victim)} python clients of killed {victim} reconnected after '
              f'{min(back):.2f}-{max(back):.2f}s; {len(moved)} socket.io-clients '
              f'recovered, {sum(s.sent for s in senders)} sent, {counts}; Swarm had a '
              f'new healthy task after {rescheduled:.1f}s at {_edge_address(new)} '
              f'(was {old_address})')
        assert counts['missed'] == 0 and counts['duplicated'] == 0, counts
        assert counts['out_of_order'] == 0, counts
        for c in moved:
            assert c['connected'], c
            assert all(x['recovered'] for x in c['connects'][1:]), c['connects']
            assert c['instances'][-1] != victim
    finally:
        node.close()
    assert new.id != old.id
    # nginx was neither restarted nor reloaded: it found the new task by name.
    assert swarm.container('nginx').id == nginx.id
    with clients(swarm.url, 3 * len(swarm.instances()), [victim]) as fresh:
        assert victim in {c.instance for c in fresh}


def _env(swarm) -> dict:
    port = swarm.url.rsplit(':', 1)[1]
    return {**os.environ, 'SWARM_STACK': swarm.stack, 'SWARM_HTTP_PORT': port}


def test_rolling_update_drains_the_instance_and_its_clients_move(swarm):
    victim = swarm.instances()[0]
    old = swarm.container(victim)
    with clients(swarm.url, 3 * len(swarm.instances()), [victim], reconnection=True) as cs:
        on_victim = [c for c in cs if c.instance == victim]
        assert on_victim
        started = time.monotonic()
        roll = subprocess.run(['compose/swarm-roll'], cwd=ROOT, env={**_env(swarm),
                              'SWARM_ROLL': victim}, capture_output=True, text=True,
                              timeout=180, check=False)
        assert roll.returncode == 0, roll.stderr
        for c in on_victim:
            welcome = c.welcomes.get(timeout=1)  # long since arrived
            assert welcome['instance'] != victim
            assert welcome['received_at'] - started < 20
        print(roll.stdout.strip())
        broadcast_round(cs, new_room(), count=3)
    # The old task drained on SIGTERM (exit 0), it was not killed.
    old.reload()
    assert old.attrs['State']['ExitCode'] == 0, old.attrs['State']
    assert swarm.container(victim).id != old.id


def test_stack_rm_leaves_nothing_behind(swarm):
    """Last: compose/swarm-down (docker stack rm, then a bounded wait)."""
    down = subprocess.run(['compose/swarm-down'], cwd=ROOT, env=_env(swarm),
                          capture_output=True, text=True, timeout=120, check=False)
    assert down.returncode == 0, down.stderr
    left = swarm.leftovers() if _swarm_active(swarm) else {}
    assert not any(left.values()), left
    volumes = swarm.client.volumes.list(
        filters={'label': f'com.docker.stack.namespace={swarm.stack}'})
    assert volumes == []


def _swarm_active(swarm) -> bool:
    return swarm.client.info()['Swarm']['LocalNodeState'] == 'active'
