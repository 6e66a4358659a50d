"""The doctor's reading of a session-binding refusal (no network): the kit's
400 sentences, as socketio_kit/policy/binding.py writes them, and the fix
each one gets (doctor/binding.py)."""
import dataclasses
import json

from doctor.binding import _refused, refusal, refusal_fix
from doctor.probe import Probe
from doctor.result import SKIP, WARN, Options
from doctor.wire import Response
from socketio_kit.policy.binding import SessionBinding


def kit_refusal(mode, reason):
    """The body the kit answers for `reason` under SESSION_BINDING=mode."""
    bind = SessionBinding('kit_session', '/socket.io', 'lax', False, {}, mode)
    message = f'Bad request: {bind.reasons[reason]}.'
    return Response(400, [('Content-Type', 'application/json')],
                    json.dumps({'code': 3, 'message': message}).encode())


def probe(kit=None):
    options = Options('http://localhost:8080', 'http://localhost:8081')
    return dataclasses.replace(Probe.parse(options), kit=kit)


def test_a_cookie_refusal_names_auto_or_with_credentials():
    resp = kit_refusal('cookie', 'cookie-missing')
    assert 'withCredentials: true' in refusal(resp)
    fault, advice = refusal_fix(probe('app1'), refusal(resp))
    assert fault == 'binding-cookie' and 'SESSION_BINDING=auto' in advice
    _, generic = refusal_fix(probe(), refusal(resp))
    assert 'withCredentials: true' in generic and 'SESSION_BINDING' not in generic
    result = _refused(probe('app1'), 'POST', resp, 'kit_session_eio')
    assert (result.status, result.fault) == (WARN, 'binding-cookie')
    assert 'SESSION_BINDING=cookie' in result.saw


def test_an_address_refusal_names_real_ip():
    resp = kit_refusal('auto', 'address')
    fault, advice = refusal_fix(probe('app1'), refusal(resp))
    assert fault == 'binding-address' and 'real_ip' in advice


def test_other_400s_are_not_binding_refusals():
    assert refusal(Response(400, [], b'"Invalid session app1.x"')) is None
    assert refusal(Response(200, [], b'SESSION_BINDING')) is None
    unknown = _refused(probe(), 'POST', Response(400, [], b'"Invalid session x"'),
                       'kit_session_eio')
    assert unknown.status == SKIP and 'sticky' in unknown.saw
    # A server that is not the kit, refusing once its cookie is not sent.
    other = _refused(probe(), 'GET', Response(403, [], b'Forbidden'), 'AWSALB')
    assert (other.status, other.fault) == (WARN, 'binding-cookie')
    assert 'AWSALB' in other.saw
