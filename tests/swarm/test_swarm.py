"""What only the Swarm stack has: services and tasks, rescheduling, rolling
updates, `docker stack rm`.

The stack is `make test-swarm`'s own (a free port, its own stack name); tasks
are inspected and killed with the Docker SDK. The last test removes the stack.
"""
import os
import subprocess
import time

import pytest

from tests.conftest import swarm_controller
from tests.support import ROOT, broadcast_round, clients, new_room, run_doctor

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


def test_killed_task_is_rescheduled_and_its_clients_come_back(swarm):
    victim = swarm.instances()[1]
    old = swarm.container(victim)
    old_address = _edge_address(old)
    nginx = swarm.container('nginx')
    with clients(swarm.url, 3 * len(swarm.instances()), [victim], reconnection=True) as cs:
        on_victim = [c for c in cs if c.instance == victim]
        assert on_victim
        killed_at = time.monotonic()
        old.kill()  # SIGKILL, through the SDK: no drain
        back = []
        for c in on_victim:
            welcome = c.welcomes.get(timeout=max(0.1, 10 - (time.monotonic() - killed_at)))
            assert welcome['instance'] != victim
            back.append(welcome['received_at'] - killed_at)
        new = swarm.wait_healthy(victim, 90, not_id=old.id)
        rescheduled = time.monotonic() - killed_at
        swarm.wait_routed(victim)
        print(f'{len(on_victim)} clients of killed {victim} reconnected after '
              f'{min(back):.2f}-{max(back):.2f}s; Swarm had a new healthy task '
              f'after {rescheduled:.1f}s at {_edge_address(new)} (was {old_address})')
        broadcast_round(cs, new_room(), count=3)
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
