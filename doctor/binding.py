"""binding: does a polling session work for a client that sends no cookies
back, as socket.io-client's `io(url)` on another origin does without
`withCredentials`?

A server may bind each session to a cookie its handshake sets (the kit's
SESSION_BINDING=cookie, a balancer's sticky cookie). A browser sends it on a
cross-origin long-poll only with `withCredentials: true`; without it every
request after the handshake gets 400 and the client loops on "xhr post error".
The other checks send the handshake's cookies back, as a credentialed browser
does; this one does not. The sticky and websocket checks use `refusal` too, to
name the fix when one of their requests is refused for its binding.
"""
import json
from typing import List, Optional

from doctor.fixes import fix
from doctor.probe import Probe, Session, connect_packet, is_unknown_session
from doctor.result import PASS, SKIP, WARN, Result
from doctor.wire import Response

# The kit names the setting in every refusal's one sentence.
MARK = 'SESSION_BINDING'
STOCK = 'a session without cookies (io(url) on another origin, no withCredentials)'


def refusal(resp: Response) -> Optional[str]:
    """The kit's sentence when `resp` refuses a request for its binding."""
    if resp.status != 400 or MARK not in resp.text:
        return None
    try:
        return str(json.loads(resp.text)['message'])
    except (ValueError, KeyError, TypeError):
        return ' '.join(resp.text.split())[:300]


def refusal_fix(probe: Probe, message: str):
    """(fault, fix) for a binding refusal's sentence."""
    if 'another address' in message:
        return 'binding-address', fix(probe, 'binding-address')
    return 'binding-cookie', fix(probe, 'binding-cookie')


def check(probe: Probe) -> List[Result]:
    session = Session(probe)
    if not session.sid:
        return [Result('binding', SKIP, 'no polling session: '
                       + session.handshake.brief())]
    names = ', '.join(v.split('=', 1)[0].strip()
                      for v in session.handshake.values('Set-Cookie'))
    credentialed, session.headers = session.headers, probe.origin_headers()
    steps = (('POST', lambda: session.post(
                  connect_packet(probe.namespace, probe.options.token))),
             ('GET', lambda: session.poll(probe.timeout)))
    try:
        for what, step in steps:
            resp = step()
            if resp.status != 200:
                return [_refused(probe, what, resp, names)]
    finally:
        session.headers = credentialed
        session.close()
    kept = f"; the handshake's cookies ({names}) are not needed" if names else ''
    return [Result('binding', PASS, f'{STOCK}: POST -> 200, GET -> 200{kept}')]


def _refused(probe: Probe, what: str, resp: Response, names: str) -> Result:
    message = refusal(resp)
    if message:
        fault, advice = refusal_fix(probe, message)
        return Result('binding', WARN, f'{STOCK}: {what} -> 400 {message!r}; '
                      'clients with withCredentials: true pass', advice, fault)
    if is_unknown_session(resp):
        return Result('binding', SKIP, f'{STOCK}: {what} -> {resp.brief()}: '
                      'the session is unknown there, see sticky')
    if names and resp.status in (400, 401, 403):
        return Result('binding', WARN, f'{STOCK}: {what} -> {resp.brief()}; '
                      f'the handshake set {names}, which such a client never '
                      'sends back',
                      fix(probe, 'binding-cookie'), 'binding-cookie')
    return Result('binding', SKIP, f'{STOCK}: {what} -> {resp.brief()}: '
                  'nothing to judge')
