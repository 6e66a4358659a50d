"""Someone else's application in compose: `make up APP=app:app
APP_PATH=examples/teamchat` for real, in a compose project of its own (its own
name, free ports, its own edge subnet and image tag), checked through nginx
only, as its users reach it: its own HTTP route answers from more than one
instance, the docs' idioms pass with the real socket.io-client, and its
cluster task ticks from exactly one instance.

Also what goes into an application's image: its requirements.txt (Flask, and
python-socketio, which must stay the kit's) from wheels built on the host, and
the README's production Dockerfile, which must build and load the app.

`make test-compose` runs this file after the main cluster is down (both
projects render compose/.generated/). The project is removed before (what a
killed run left) and after, pass or fail.
"""
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import socketio

from control import DockerController
from native.net import free_ports
from tests.support import (
    ALLOWED_ORIGIN,
    ALLOWED_ORIGINS,
    ROOT,
    free_subnet,
    needs_socketio_client,
    require_docker,
    teamchat_idioms,
)

pytestmark = pytest.mark.only_target('compose')

PROJECT = os.environ.get('KIT_APP_TEST_PROJECT') or 'socketio-kit-app-test'
KIT_IMAGE = 'socketio-kit-app:app-test'
TEAMCHAT = ROOT / 'examples' / 'teamchat'
INSTANCES = 3
APP_IMAGE_PY = ROOT / 'compose' / 'app_image.py'
PYTHON = str(ROOT / '.venv' / 'bin' / 'python')


def _down():
    compose = (os.environ.get('COMPOSE') or 'docker compose').split()
    subprocess.run([*compose, '-p', PROJECT, 'down', '-v', '--remove-orphans'],
                   capture_output=True, timeout=300, check=False)


def app_image_name(app_path: Path) -> str:
    return subprocess.run([PYTHON, str(APP_IMAGE_PY), '--name', '--app-path', str(app_path),
                           '--kit-image', KIT_IMAGE], capture_output=True, text=True,
                          check=True, timeout=30).stdout.strip()


@dataclass
class Teamchat:
    url: str
    control: DockerController
    image: str


@pytest.fixture(scope='module')
def docker_client():
    require_docker()
    import docker
    return docker.from_env()


@pytest.fixture(scope='module')
def teamchat(docker_client):
    """examples/teamchat on INSTANCES instances, through `compose/up` (what
    `make up APP=app:app APP_PATH=examples/teamchat` runs)."""
    _down()
    http, page = free_ports(2)
    env = {**os.environ, 'COMPOSE_PROJECT_NAME': PROJECT, 'INSTANCES': str(INSTANCES),
           'HTTP_PORT': str(http), 'PAGE_PORT': str(page), 'EDGE_SUBNET': free_subnet(),
           'APP_IMAGE': KIT_IMAGE, 'APP': 'app:app', 'APP_PATH': str(TEAMCHAT),
           'CORS_ALLOWED_ORIGINS': ALLOWED_ORIGINS, 'PROFILE': '', 'PYTHON': PYTHON}
    try:
        up = subprocess.run([str(ROOT / 'compose' / 'up')], cwd=ROOT, env=env, text=True,
                            capture_output=True, timeout=900, check=False)
        print(up.stdout[-2000:])
        assert up.returncode == 0, f'{up.stdout[-3000:]}\n{up.stderr[-3000:]}'
        url = f'http://127.0.0.1:{http}'
        yield Teamchat(url, DockerController(docker_client, PROJECT, url),
                       app_image_name(TEAMCHAT))
    finally:
        _down()


def test_every_instance_runs_the_applications_image(teamchat):
    assert teamchat.control.instances() == [f'app{i}' for i in range(1, INSTANCES + 1)]
    for name in teamchat.control.instances():
        container = teamchat.control.container(name)
        assert container.attrs['Config']['Image'] == teamchat.image, name
        env = dict(e.split('=', 1) for e in container.attrs['Config']['Env'])
        assert (env['APP'], env['APP_PATH']) == ('app:app', '/srv/app'), name
        assert container.attrs['HostConfig']['Binds'] in (None, []), name  # copied in, not mounted


def test_its_own_http_route_answers_from_more_than_one_instance(teamchat):
    seen = set()
    for _ in range(3 * INSTANCES):
        resp = requests.get(f'{teamchat.url}/hello', timeout=5)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body['hello'] == 'teamchat'
        seen.add(body['instance'])
        if len(seen) > 1:
            break
    assert len(seen) > 1, f'every /hello came from {seen}'


def test_the_docs_idioms_pass_through_nginx(teamchat):
    needs_socketio_client()
    # nginx picks the instances: try a few times for two clients on two
    # instances (least_conn makes that the rule); one instance still runs
    # every idiom, so a last run there is accepted.
    for _ in range(5):
        seen = teamchat_idioms(teamchat.url, teamchat.url)
        a, b = seen['helloA']['instance'], seen['helloB']['instance']
        if a != b:
            break
    print(f'idioms through nginx: client A on {a}, client B on {b}')
    assert seen['ready'] in teamchat.control.instances()


class Watcher:
    """python-socketio's Client through nginx, recording `tick`s."""

    def __init__(self, url: str):
        self.sio = socketio.Client(reconnection=False,
                                   websocket_extra_options={'suppress_origin': True})
        self.instance = None
        self.ticks = []
        self.sio.on('hello', self._on_hello)
        self.sio.on('tick', self._on_tick)
        self.sio.connect(url, headers={'Origin': ALLOWED_ORIGIN}, transports=['websocket'],
                         wait_timeout=10)
        deadline = time.monotonic() + 10
        while self.instance is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.instance, 'no hello within 10 s'

    def _on_hello(self, hello):
        self.instance = hello['instance']

    def _on_tick(self, tick, offset=None):
        self.ticks.append(tick)

    def close(self):
        self.sio.disconnect()


def test_the_cluster_task_ticks_from_exactly_one_instance(teamchat):
    watchers = []
    try:
        for _ in range(2 * INSTANCES):
            watchers.append(Watcher(teamchat.url))
        landed = {w.instance for w in watchers}
        assert len(landed) > 1, f'every watcher landed on {landed}'
        time.sleep(4.5)
        ticks = [t for w in watchers for t in w.ticks]
        assert ticks, 'no tick in 4.5 s'
        assert len({(t['instance'], t['fence']) for t in ticks}) == 1, ticks
        for w in watchers:  # each watcher, on whatever instance, gets each tick once
            ns = [t['n'] for t in w.ticks]
            assert ns and ns == sorted(set(ns)), (w.instance, ns)
        print(f'cluster task on {ticks[0]["instance"]}; watchers on {sorted(landed)}')
    finally:
        for w in watchers:
            w.close()


def _versions(docker_client, image: str) -> dict:
    probe = ('import json, importlib.metadata as m; print(json.dumps('
             '{d: m.version(d) for d in ("flask", "python-socketio")}))')
    return json.loads(docker_client.containers.run(
        image, ['-c', probe], entrypoint='python3', remove=True).decode())


def _kit_version(docker_client, package: str) -> str:
    out = docker_client.containers.run(KIT_IMAGE, ['/srv/kit/constraints.txt'],
                                       entrypoint='cat', remove=True).decode()
    return re.search(rf'^{package}==(\S+)$', out, re.M).group(1)


def test_requirements_go_into_the_image_and_the_kits_packages_stay(teamchat, docker_client,
                                                                    tmp_path):
    """A requirements.txt that names Flask (the kit has none) and an
    unpinned python-socketio: Flask from wheels built on the host, and the
    kit's python-socketio, not the newest."""
    app = tmp_path / 'flaskchat'
    shutil.copytree(TEAMCHAT, app)
    (app / 'requirements.txt').write_text('flask\npython-socketio>=5\n')
    image = app_image_name(app)
    try:
        built = subprocess.run([PYTHON, str(APP_IMAGE_PY), '--app-path', str(app),
                                '--app', 'app:app', '--kit-image', KIT_IMAGE],
                               capture_output=True, text=True, timeout=600, check=False,
                               env={**os.environ, 'COMPOSE_PROJECT_NAME': PROJECT})
        assert built.returncode == 0, built.stdout + built.stderr
        versions = _versions(docker_client, image)
        assert versions['flask']
        assert versions['python-socketio'] == _kit_version(docker_client, 'python-socketio')
    finally:
        shutil.rmtree(ROOT / 'compose' / '.generated' / 'apps' / image.rsplit(':', 1)[1],
                      ignore_errors=True)
        _remove_image(docker_client, image)


def _remove_image(docker_client, image: str):
    import docker
    try:
        docker_client.images.remove(image, force=True)
    except docker.errors.ImageNotFound:
        pass


def readme_dockerfile() -> str:
    text = (ROOT / 'README.md').read_text()
    found = re.search(r'\*\*A production image\.?\*\*.*?```dockerfile\n(.*?)```', text, re.S)
    assert found, 'README "A production image" has no ```dockerfile block'
    return found.group(1)


def test_the_readmes_production_dockerfile_builds_and_loads_the_app(teamchat, docker_client,
                                                                    tmp_path):
    """The Dockerfile as the README gives it, in a copy of teamchat whose
    requirements.txt names a package the kit already has (no index answers
    inside a build here): it builds FROM the kit's image and the image
    loads the application the way an instance starts."""
    app = tmp_path / 'teamchat'
    shutil.copytree(TEAMCHAT, app)
    (app / 'requirements.txt').write_text('python-socketio\n')
    (app / 'Dockerfile').write_text(readme_dockerfile())
    image = f'{KIT_IMAGE}-readme'
    try:
        docker_client.images.build(path=str(app), tag=image, rm=True, forcerm=True,
                                   buildargs={'KIT_IMAGE': KIT_IMAGE})
        probe = ('from socketio_kit.config import load_settings\n'
                 'from socketio_kit.loader import load_application\n'
                 'app = load_application(load_settings())\n'
                 'print(type(app.sio).__name__, app.http is not None)\n')
        out = docker_client.containers.run(image, ['python3', '-c', probe], remove=True,
                                           environment={'INSTANCE_NAME': 'app1'},
                                           stderr=False).decode()
        assert out.split() == ['Server', 'True'], out
        user = docker_client.images.get(image).attrs['Config']['User']
        assert user == 'kit'
    finally:
        _remove_image(docker_client, image)

