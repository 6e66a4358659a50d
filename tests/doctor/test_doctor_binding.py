"""The doctor on a kit that binds sessions to the cookie alone
(SESSION_BINDING=cookie): the stock client's refusal is a WARN that names the
fix; the kit's default (auto) gives a PASS (tests/doctor/test_doctor.py)."""
from tests.support import local_cluster
from tests.support import run_doctor as doctor


def test_cookie_binding_names_the_fix(tmp_path):
    with local_cluster(tmp_path, 1, {'SESSION_BINDING': 'cookie'}) as local:
        url = local.url.replace('127.0.0.1', 'localhost')  # the page's site
        code, report, checks = doctor(url)
    binding = checks['binding']
    assert binding['status'] == 'WARN', binding
    assert binding['fault'] == 'binding-cookie'
    assert 'SESSION_BINDING=cookie' in binding['saw']  # the server's own sentence
    assert 'SESSION_BINDING=auto' in binding['fix']
    assert 'withCredentials: true' in binding['fix']
    # Clients that send the cookie back are fine: nothing else fails.
    assert code == 0 and checks['sticky']['status'] == 'PASS', checks
