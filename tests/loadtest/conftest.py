"""TEMPORARY stand-in for the `cluster` fixture of tests/conftest.py.

Delete this file once tests/conftest.py provides `cluster` (selected with
--target local|compose): the scenario tests use only .url, .instances, .kind,
.kill(name), .stop(name) and .start(name).
"""
import signal

import pytest

from loadtest.control import NativeController
from tests.support import local_cluster


class LocalTarget:
    kind = 'local'

    def __init__(self, lc):
        self.lc = lc
        self.url = lc.url
        self.instances = list(lc.app_ports)
        self._native = NativeController(lc)

    def kill(self, name):
        self._native.kill(name)   # the whole process tree, like docker kill

    def stop(self, name):
        self.lc.signal(name, signal.SIGTERM)

    def start(self, name):
        if not self.lc.is_running(name):
            self.lc.start_instance(name)

    def pid(self, name):
        return self.lc.pid(name)


@pytest.fixture(scope='session')
def cluster(tmp_path_factory):
    with local_cluster(tmp_path_factory.mktemp('loadtest-cluster'), 3) as lc:
        yield LocalTarget(lc)
