"""The doctor against the kit's own cluster and against each broken fixture.

Every fixture is real nginx in front of a real python-socketio server
(tests/fixtures/broken.py); the doctor must name its fault, and give no FAIL
on the kit.
"""
import pytest

from tests.fixtures.broken import broken_setup
from tests.support import local_cluster
from tests.support import run_doctor as doctor


def fails(checks):
    return {(name, r['fault']) for name, r in checks.items()
            if r['status'] == 'FAIL'}


# -- the kit ------------------------------------------------------------------
class Kit:
    """The cluster, at http://localhost:PORT as `make doctor` reaches it:
    the same site as the page's origin, so the session-binding cookie
    (SameSite=Lax) travels; from 127.0.0.1 the cookies check would rightly
    fail."""

    def __init__(self, local):
        self.local, self.app_ports = local, local.app_ports
        self.url = local.url.replace('127.0.0.1', 'localhost')


@pytest.fixture(scope='module')
def kit(tmp_path_factory):
    # Short pings so that --slow holds its connections for 3 s, not 45 s.
    with local_cluster(tmp_path_factory.mktemp('kit'), 3,
                       {'PING_INTERVAL': '2', 'PING_TIMEOUT': '1'}) as local:
        yield Kit(local)


def test_kit_has_no_fail(kit):
    code, report, checks = doctor(kit.url, '--slow')
    assert code == 0 and report['ok'], checks
    assert not fails(checks)
    assert {r['status'] for r in checks.values()} == {'PASS'}, checks
    assert report['kit_instance'] in kit.app_ports
    # The sticky check spread its sessions over several instances.
    seen = [name for name in kit.app_ports if name in checks['sticky']['saw']]
    assert len(seen) >= 2, checks['sticky']['saw']


def test_kit_names_an_origin_missing_from_the_allow_list(kit):
    code, _, checks = doctor(kit.url, origin='http://evil.example')
    assert code == 1
    assert checks['cors']['fault'] == 'cors-not-allowed'
    assert 'CORS_ALLOWED_ORIGINS' in checks['cors']['fix']
    # The rest still runs, without an Origin header, and passes.
    assert checks['websocket']['status'] == checks['sticky']['status'] == 'PASS'


def test_kit_suggests_the_right_path(kit):
    code, _, checks = doctor(kit.url, '--path', '/wrong')
    assert code == 1
    assert checks['path']['fault'] == 'path-404'
    assert '/socket.io' in checks['path']['fix']
    assert 'SOCKETIO_PATH' in checks['path']['fix']


def test_kit_names_an_unknown_namespace(kit):
    code, _, checks = doctor(kit.url, '--namespace', '/nope')
    assert code == 1
    assert fails(checks) == {('namespace', 'namespace-rejected')}
    assert 'default namespace "/" accepts' in checks['namespace']['saw']


# -- the broken fixtures ----------------------------------------------------------
# name -> (extra doctor args, FAILs that must appear, FAILs that may appear)
CASES = {
    'no-upgrade': ((), {('websocket', 'ws-no-upgrade-header')}, set()),
    'upgrade-no-connection': (
        (), {('websocket', 'ws-no-connection-header')}, set()),
    # The websocket check's one upgrade of a polling session may also land on
    # the wrong instance; that too is the missing affinity.
    'round-robin': ((), {('sticky', 'sticky-none')},
                    {('websocket', 'sticky-none')}),
    'proxy-cors': ((), {('cors', 'cors-duplicate'),
                        ('preflight', 'preflight')}, set()),
    'no-cors': ((), {('cors', 'cors-same-origin-only'),
                     ('preflight', 'preflight')}, set()),
    'cors-off': ((), {('cors', 'cors-none'), ('preflight', 'preflight')},
                 set()),
    'star-credentials': ((), {('cors', 'cors-wildcard-credentials')}, set()),
    'custom-path': ((), {('path', 'path-404')}, set()),
    'short-timeout': (('--slow',), {('slow', 'slow-timeout')}, set()),
}


@pytest.mark.parametrize('name', sorted(CASES))
def test_doctor_names_the_fault(name, tmp_path):
    args, required, optional = CASES[name]
    with broken_setup(name, tmp_path) as url:
        code, report, checks = doctor(url, *args)
    assert code == 1
    assert report['kit_instance'] is None
    found = fails(checks)
    assert required <= found <= required | optional, checks
    if name == 'custom-path':
        assert '/ws/socket.io' in checks['path']['fix']
    if name == 'short-timeout':
        assert 'after 5.' in checks['slow']['saw']
    if name == 'round-robin':
        assert 'Invalid session' in checks['sticky']['saw']
