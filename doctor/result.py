"""What a check finds: a Result, and the options a run was asked for.

A Result says PASS, WARN, FAIL or SKIP, what the doctor saw (status codes,
headers, bodies) and the fix. `fault` is a short stable name for the fault
(`cors-duplicate`, `sticky-none`, ...) so tests and the README can refer to it.
"""
import dataclasses

PASS, WARN, FAIL, SKIP = 'PASS', 'WARN', 'FAIL', 'SKIP'
STATUSES = (PASS, WARN, FAIL, SKIP)


@dataclasses.dataclass
class Result:
    """One line of the doctor's report."""
    check: str
    status: str
    saw: str
    fix: str = ''
    fault: str = ''

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Options:
    """What the command line asked for."""
    url: str
    origin: str
    path: str = '/socket.io'
    namespace: str = '/'
    slow: bool = False
    timeout: float = 5.0
    connections: int = 5  # sticky check: independent sessions
    polls: int = 3        # sticky check: extra POST+GET pairs per session
    token: str = ''       # sent as the CONNECT's auth: {token}
