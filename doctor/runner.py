"""Run the checks in order; one CHECKS sequence says which run and which
are skipped.

Every check is a function probe -> [Result]. Checks after `path` need an
Engine.IO handshake at the path; without one they are reported as SKIP.
"""
import dataclasses
from typing import Callable, List, Optional

from doctor import binding, cors, namespace, path, scheme, security, slow, sticky, websocket
from doctor.probe import Probe
from doctor.result import FAIL, SKIP, Result
from doctor.wire import WireError


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Probe], List[Result]]
    needs_session: bool = True  # needs an Engine.IO handshake at the path
    slow_only: bool = False     # only with --slow


CHECKS = (
    Check('scheme', scheme.check, needs_session=False),
    Check('path', path.check, needs_session=False),
    Check('tls', security.check_tls, needs_session=False),
    Check('protocol', path.check_protocol),
    Check('cors', cors.check),
    Check('preflight', cors.check_preflight),
    Check('cookies', security.check_cookies),
    Check('binding', binding.check),
    Check('websocket', websocket.check),
    Check('sticky', sticky.check),
    Check('namespace', namespace.check),
    Check('slow', slow.check, slow_only=True),
)
NO_SESSION = 'needs an Engine.IO handshake at the path; fix the path check first'


def run(probe: Probe, out: Optional[Callable[[Result], None]] = None,
        checks=CHECKS) -> List[Result]:
    """Every check that applies, in order; out(result) as each one ends."""
    results: List[Result] = []
    has_session = probe.handshake is not None and probe.handshake.packet is not None
    for check in checks:
        if check.slow_only and not probe.options.slow:
            continue
        if check.needs_session and not has_session:
            found = [Result(check.name, SKIP, NO_SESSION)]
        else:
            found = _run_one(check, probe)
        for result in found:
            results.append(result)
            if out:
                out(result)
    return results


def _run_one(check: Check, probe: Probe) -> List[Result]:
    try:
        return check.run(probe)
    except WireError as exc:
        # A request that failed half-way through a check (the server went
        # away, a reset) is a finding, not a crash.
        return [Result(check.name, FAIL, f'request failed during the check: '
                       f'{exc}', 'check that the server and the balancer stay '
                       'up; rerun the doctor', 'request-failed')]

