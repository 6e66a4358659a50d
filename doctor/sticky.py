"""sticky: does every request of a polling session reach the instance that
holds it ("Session ID unknown" otherwise)?"""
from typing import List, Optional

from doctor.binding import MARK, refusal, refusal_fix
from doctor.fixes import fix
from doctor.probe import UNKNOWN_SESSION, Probe, Session, welcome_instance
from doctor.result import FAIL, PASS, Result
from doctor.wire import WireError

# A long-poll with nothing to say is held by the session's own instance until
# this timeout: that is a success, not a failure.
HELD_POLL = 3.0


def check(probe: Probe) -> List[Result]:
    options = probe.options
    failures, instances = [], []
    per_session = 2 + 2 * options.polls
    for number in range(1, options.connections + 1):
        failure, instance = _one_session(probe, number)
        if failure:
            failures.append(failure)
        instances.append(instance)
    seen = sorted({i for i in instances if i})
    where = f'; instances seen: {", ".join(seen)}' if seen else ''
    if not failures:
        return [Result('sticky', PASS, f'{options.connections} sessions x '
                       f'{per_session} requests (POSTs and polls) each reached '
                       f'their own instance{where}')]
    unknown = any(m in f for f in failures for m in UNKNOWN_SESSION)
    more = f' (+{len(failures) - 1} more)' if len(failures) > 1 else ''
    bound = [f for f in failures if MARK in f]
    if bound:  # refused for its binding, not lost (doctor/binding.py)
        fault, advice = refusal_fix(probe, bound[0])
        return [Result('sticky', FAIL, f'{len(failures)} of '
                       f'{options.connections} sessions refused: {bound[0]}'
                       f'{more}{where}', advice, fault)]
    why = (': "Session ID unknown" - requests of one session reach different '
           'instances, no affinity' if unknown else '')
    return [Result('sticky', FAIL, f'{len(failures)} of {options.connections} '
                   f'sessions lost: {failures[0]}{more}{why}{where}',
                   fix(probe, 'sticky'),
                   'sticky-none' if unknown else 'sticky-error')]


def _one_session(probe: Probe, number: int):
    """(failure or None, instance named in `welcome` or None)."""
    session = Session(probe)
    if not session.sid:
        return f'handshake {number}: {session.handshake.brief()}', None
    steps = [('POST "40"', lambda: session.post('40')),
             ('GET', lambda: session.poll(probe.timeout))]
    for i in range(probe.options.polls):
        steps += [(f'POST "40/doctor-{i},"',
                   lambda i=i: session.post(f'40/doctor-{i},')),
                  ('GET', lambda: session.poll(HELD_POLL))]
    instance: Optional[str] = None
    try:
        for request_number, (what, step) in enumerate(steps, 1):
            where = f'session {number} request {request_number} ({what})'
            try:
                resp = step()
            except WireError as exc:
                if what == 'GET' and 'timed out' in str(exc):
                    continue  # held by the session's own instance
                return f'{where}: {exc}', instance
            message = refusal(resp)
            if message:
                return f'{where} -> 400 {message!r}', instance
            if resp.status != 200:
                return f'{where} -> {resp.brief(60)}', instance
            if what == 'GET' and request_number == 2:
                instance = welcome_instance(resp.text)
    finally:
        session.close()
    return None, instance
