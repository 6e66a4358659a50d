"""The load test's view of the cluster controllers, which live in `control/`
(shared with the tests): kill, stop and start one instance, weigh it.

The names the load test imports from here stay importable from here.
"""
from control import (
    Controller,
    DockerController,
    NativeController,
    detect,
    docker_controller,
    native_controller,
)

__all__ = ['Controller', 'DockerController', 'FixtureController',
           'NativeController', 'detect', 'docker_controller',
           'native_controller']


def FixtureController(target) -> Controller:  # noqa: N802 - the old class name
    """The controller of the tests' `cluster` fixture (its `control`); this
    keeps loadtest.cli's old wrapping call working until it passes that
    controller directly."""
    found = target if isinstance(target, Controller) else \
        getattr(target, 'control', None)
    if not isinstance(found, Controller):
        raise TypeError(f'{type(target).__name__} has no control.Controller')
    return found
