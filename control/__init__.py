"""Drive a running cluster: kill, stop and start one instance, read its log,
weigh it. The tests and the load test use the same controllers.

- `NativeController`: the native cluster's processes (native.processes).
- `DockerController`: the compose project's containers, through the Docker
  SDK (never the docker CLI).
- `Controller`: the base, which can do nothing (a cluster we only connect to).

`detect()` finds whichever of them is running.
"""
from control.base import Controller
from control.detect import detect, docker_controller, native_controller
from control.docker import DockerController
from control.native import NativeController

__all__ = ['Controller', 'DockerController', 'NativeController', 'detect',
           'docker_controller', 'native_controller']
