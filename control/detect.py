"""Find the cluster that runs: `make local`'s processes or the compose project."""
from pathlib import Path
from typing import Optional

from control.base import Controller
from control.docker import DockerController
from control.native import NativeController

PROJECT = 'socketio-kit'  # COMPOSE_PROJECT in the Makefile


def native_controller(run_dir: Optional[Path] = None) -> Optional[NativeController]:
    """The native cluster of `make local` if any of its instances runs."""
    try:
        from native.cluster import RUN_DIR, LocalCluster
        from socketio_kit.config import ConfigError, load_cluster
    except ImportError:  # installed from the wheel, outside the kit
        return None
    try:
        settings = load_cluster()
    except ConfigError:
        return None
    local = LocalCluster.from_settings(Path(run_dir or RUN_DIR), settings)
    if any(local.processes.is_running(n) for n in local.app_ports):
        return NativeController(local)
    return None


def docker_controller(project: str = PROJECT, url: Optional[str] = None
                      ) -> Optional[DockerController]:
    """The compose project's containers, if a Docker engine answers and the
    project has app instances."""
    try:
        import docker
        client = docker.from_env(timeout=5)
        client.ping()
        found = DockerController(client, project, url)
        return found if found.instances() else None
    except Exception:  # noqa: BLE001 - no SDK, no engine, no permission
        return None


def detect(kill_via: str, run_dir=None, project: str = PROJECT) -> Controller:
    """The controller --kill-via asks for; `auto` prefers a running native
    cluster, then the compose project, then none."""
    if kill_via == 'none':
        return Controller()
    if kill_via in ('native', 'auto'):
        found = native_controller(run_dir)
        if found:
            return found
        if kill_via == 'native':
            raise RuntimeError('--kill-via native: no native cluster is '
                               'running (start it with `make local`).')
    if kill_via in ('docker', 'auto'):
        found = docker_controller(project)
        if found:
            return found
        if kill_via == 'docker':
            raise RuntimeError(f'--kill-via docker: no Docker engine or no '
                               f'containers of compose project {project} '
                               f'(start it with `make up`).')
    return Controller()
