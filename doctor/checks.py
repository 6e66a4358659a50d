"""The doctor's checks: each one probes the live URL and returns a Result.

A Result says PASS, WARN, FAIL or SKIP, what the doctor saw (status codes,
headers, bodies) and the fix. `fault` is a short stable name for the fault
(`cors-duplicate`, `sticky-none`, ...) so tests and the README can refer to it.
When the target is the kit (its /healthz answers `{"instance", "redis"}`),
fixes name the kit's variables and files; otherwise they name the
python-socketio / Node socket.io options and the nginx directives.
"""
import dataclasses
import json
import threading
import time
import urllib.parse
from typing import Callable, List, Optional

from doctor.wire import (Response, Target, WireError,
                         decode_payload, eio_query, open_packet, request,
                         websocket)

PASS, WARN, FAIL, SKIP = 'PASS', 'WARN', 'FAIL', 'SKIP'
# An origin no deployment allows: whether the server accepts it tells a strict
# allow-list from one that echoes every origin.
FOREIGN_ORIGIN = 'http://doctor-probe.invalid'
# Where Socket.IO servers are commonly mounted, tried when --path answers 404.
CANDIDATE_PATHS = ('/socket.io', '/ws/socket.io', '/api/socket.io', '/ws',
                   '/socket', '/io', '/realtime', '/engine.io', '/sio')
# Bodies that mean "this Engine.IO server does not know that session":
# python-engineio says "Invalid session <sid>", Node engine.io says
# {"code":1,"message":"Session ID unknown"}.
UNKNOWN_SESSION = ('Invalid session', 'Session ID unknown')
NOT_ACCEPTED_ORIGIN = 'Not an accepted origin'


@dataclasses.dataclass
class Result:
    check: str
    status: str
    saw: str
    fix: str = ''
    fault: str = ''

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Options:
    url: str
    origin: str
    path: str = '/socket.io'
    namespace: str = '/'
    slow: bool = False
    timeout: float = 5.0
    connections: int = 5  # sticky check: independent sessions
    polls: int = 3        # sticky check: extra POST+GET pairs per session


def _is_unknown_session(resp: Response) -> bool:
    return resp.status == 400 and any(m in resp.text for m in UNKNOWN_SESSION)


def _allow_origins(resp: Response) -> List[str]:
    """Every Access-Control-Allow-Origin value, a comma-joined one split."""
    values = []
    for value in resp.values('Access-Control-Allow-Origin'):
        values += [v.strip() for v in value.split(',') if v.strip()]
    return values


def _credentials(resp: Response) -> bool:
    return any(v.strip().lower() == 'true'
               for v in resp.values('Access-Control-Allow-Credentials'))


def _cors_seen(resp: Response) -> str:
    allow = resp.values('Access-Control-Allow-Origin')
    creds = resp.values('Access-Control-Allow-Credentials')
    shown = ', '.join(f'Access-Control-Allow-Origin: {v}' for v in allow) or \
        'no Access-Control-Allow-Origin'
    if creds:
        shown += ', Access-Control-Allow-Credentials: ' + ', '.join(creds)
    return shown


class Session:
    """One Engine.IO polling session, opened the way a browser opens it."""

    def __init__(self, doctor: 'Doctor', origin: Optional[str]):
        self.doctor = doctor
        self.headers = {'Origin': origin} if origin else {}
        resp = doctor.get(eio_query(doctor.path, transport='polling'),
                          self.headers)
        self.handshake = resp
        self.open = open_packet(resp)
        self.sid = self.open and self.open['sid']

    def _query(self) -> str:
        return eio_query(self.doctor.path, transport='polling', sid=self.sid)

    def post(self, text: str) -> Response:
        return request(self.doctor.target, 'POST', self._query(),
                       {**self.headers,
                        'Content-Type': 'text/plain;charset=UTF-8'},
                       text.encode(), self.doctor.timeout)

    def poll(self, timeout: float) -> Response:
        return request(self.doctor.target, 'GET', self._query(), self.headers,
                       timeout=timeout)

    def close(self):
        try:
            self.post('1')
        except WireError:
            pass


class Doctor:
    """Runs the checks against one URL and keeps what they found."""

    def __init__(self, options: Options, out: Optional[Callable] = None):
        self.options = options
        self.target = Target.parse(options.url)
        self.path = self.target.prefix + '/' + options.path.strip('/')
        self.origin = options.origin.rstrip('/')
        self.namespace = '/' + options.namespace.strip('/')
        self.timeout = options.timeout
        self.results: List[Result] = []
        self.out = out
        self.kit: Optional[str] = None     # instance name if the kit answered
        self.first: Optional[Response] = None  # the handshake with --origin
        self.session_origin: Optional[str] = None
        self.sessions_ok = False
        self.ping = (25.0, 20.0)

    # -- plumbing --------------------------------------------------------
    def get(self, path: str, headers=None, timeout=None) -> Response:
        return request(self.target, 'GET', path, headers or {},
                       timeout=timeout or self.timeout)

    def add(self, result: Result):
        self.results.append(result)
        if self.out:
            self.out(result)

    def fix(self, kit: str, other: str) -> str:
        return kit if self.kit else other

    def run(self) -> List[Result]:
        self.detect_kit()
        self.check_scheme()
        if not self.check_path():
            for name in ('protocol', 'cors', 'preflight', 'websocket',
                         'sticky', 'namespace') + (('slow',) if self.options.slow else ()):
                self.add(Result(name, SKIP, 'needs an Engine.IO handshake at '
                                'the path; fix the path check first'))
            return self.results
        checks = [('protocol', self.check_protocol), ('cors', self.check_cors),
                  ('preflight', self.check_preflight),
                  ('websocket', self.check_websocket),
                  ('sticky', self.check_sticky),
                  ('namespace', self.check_namespace)]
        if self.options.slow:
            checks.append(('slow', self.check_slow))
        for name, check in checks:
            try:
                check()
            except WireError as exc:
                # A request that failed half-way through a check (the
                # server went away, a reset) is a finding, not a crash.
                self.add(Result(name, FAIL, f'request failed during the '
                                f'check: {exc}', 'check that the server and '
                                'the balancer stay up; rerun the doctor',
                                'request-failed'))
        return self.results

    def detect_kit(self):
        try:
            resp = self.get(self.target.prefix + '/healthz', timeout=2)
            body = json.loads(resp.text)
            if isinstance(body, dict) and {'instance', 'redis'} <= set(body):
                self.kit = str(body['instance'])
        except (WireError, ValueError):
            pass

    # -- scheme ------------------------------------------------------------
    def check_scheme(self):
        page = urllib.parse.urlsplit(self.origin)
        url = self.target.scheme
        if page.scheme not in ('http', 'https') or not page.hostname:
            self.add(Result('scheme', FAIL, f'--origin {self.origin!r} is not '
                            'an origin', 'pass the page origin as '
                            'scheme://host[:port], e.g. http://localhost:8081',
                            'bad-origin-arg'))
            return
        note = ''
        if page.hostname != self.target.host:
            note = (f'; note: page host {page.hostname} and URL host '
                    f'{self.target.host} are different sites, so a SameSite='
                    f'Lax cookie set by the URL is not sent from the page')
        if page.scheme == 'https' and url == 'http':
            self.add(Result(
                'scheme', FAIL, f'https page ({self.origin}) -> http URL: the '
                'browser blocks http:// and ws:// from an https page as mixed '
                'content', self.fix(
                    'terminate TLS in front of the balancer and connect to '
                    'https://... (wss:// follows)',
                    'serve Socket.IO over https and use an https:// URL in '
                    'io(...)'), 'scheme-mixed'))
        elif page.scheme == 'http' and url == 'https':
            self.add(Result(
                'scheme', WARN, f'http page ({self.origin}) -> https URL: it '
                'connects, but http and https are different sites, so '
                'SameSite cookies are not sent and Secure cookies cannot be '
                'read by the page' + note,
                'serve the page over https too', 'scheme-reverse'))
        else:
            self.add(Result('scheme', PASS, f'{page.scheme} page -> {url} URL: '
                            f'same security context' + note))

    # -- path --------------------------------------------------------------
    def check_path(self) -> bool:
        query = eio_query(self.path, transport='polling')
        try:
            self.first = self.get(query, {'Origin': self.origin})
        except WireError as exc:
            self.add(Result('path', FAIL, f'GET {self.target.origin}{query}: '
                            f'{exc}', 'check the URL and that the balancer '
                            'runs (make local-ps / make ps)', 'unreachable'))
            return False
        resp = self.first
        packet = open_packet(resp)
        if packet:
            self._take_open(packet)
            self.session_origin = self.origin
            self.add(Result('path', PASS, f'GET {query} -> 200 open packet '
                            f'(sid {packet["sid"]}, pingInterval '
                            f'{packet.get("pingInterval")} ms, upgrades '
                            f'{packet.get("upgrades")})'))
            return True
        if resp.status == 400 and NOT_ACCEPTED_ORIGIN in resp.text:
            # Engine.IO is there; it refuses the origin (the cors check says
            # why). The other checks continue without an Origin header, like
            # a non-browser client.
            try:
                plain = open_packet(self.get(query))
            except WireError:
                plain = None
            if plain:
                self._take_open(plain)
            self.add(Result('path', PASS, f'GET {query} -> 400 '
                            f'"{NOT_ACCEPTED_ORIGIN}": Engine.IO answers here '
                            f'(it refuses the origin, see cors)'))
            return bool(plain)
        if resp.status in (301, 302, 303, 307, 308):
            self.add(Result('path', FAIL, f'GET {query} -> {resp.status} '
                            f'redirect to {resp.first("Location")}',
                            'connect to the final URL (scheme and path) '
                            'directly: Engine.IO requests must not be '
                            'redirected', 'path-redirect'))
            return False
        found = self._find_path()
        if found:
            fix = (f'the server answers at {found}: use io(url, {{path: '
                   f'"{found}"}}) in the client and --path {found} here' +
                   (', or set SOCKETIO_PATH' if self.kit else
                    ', or mount the server at ' + self.path))
            self.add(Result('path', FAIL, f'GET {query} -> {resp.brief()}; '
                            f'an Engine.IO handshake succeeds at {found}',
                            fix, 'path-404'))
        else:
            self.add(Result(
                'path', FAIL, f'GET {query} -> {resp.brief()}; no Engine.IO '
                f'handshake at the usual paths ({", ".join(CANDIDATE_PATHS)})',
                'find the path the server is mounted at (python-socketio '
                'socketio_path, Node `path`) and make the proxy forward it '
                '(nginx `location <path>/`)', 'path-404'))
        return False

    def _take_open(self, packet: dict):
        self.sessions_ok = True
        try:
            self.ping = (packet['pingInterval'] / 1000.0,
                         packet['pingTimeout'] / 1000.0)
        except (KeyError, TypeError):
            pass

    def _find_path(self) -> Optional[str]:
        prefix = self.target.prefix
        for candidate in CANDIDATE_PATHS:
            path = prefix + candidate
            if path == self.path:
                continue
            try:
                resp = self.get(eio_query(path, transport='polling'),
                                timeout=min(self.timeout, 3))
            except WireError:
                continue
            if open_packet(resp) or (resp.status == 400 and
                                     NOT_ACCEPTED_ORIGIN in resp.text):
                return path
        return None

    # -- protocol ----------------------------------------------------------
    def check_protocol(self):
        headers = {'Origin': self.session_origin} if self.session_origin else {}
        query3 = f'{self.path}/?EIO=3&transport=polling'
        try:
            v3 = self.get(query3, headers)
        except WireError as exc:
            v3 = None
            v3_text = f'EIO=3 -> {exc}'
        else:
            v3_text = f'EIO=3 -> {v3.brief(60)}'
        if v3 is not None and v3.status == 200 and '0{' in v3.text[:16]:
            note = 'v2 clients (socket.io-client 2.x) are accepted (allowEIO3)'
        elif v3 is not None and v3.status == 400:
            note = ('v2 clients (socket.io-client 2.x) cannot connect; they '
                    'need socket.io-client >= 3')
        else:
            note = 'no clear answer for v2 clients'
        self.add(Result('protocol', PASS, f'EIO=4 -> 200 open packet; '
                        f'{v3_text}: {note}'))

    # -- CORS ----------------------------------------------------------------
    def check_cors(self):
        resp = self.first
        origin = self.origin
        shown = _cors_seen(resp)
        if open_packet(resp):
            allow = _allow_origins(resp)
            if not allow:
                self.add(Result('cors', FAIL, f'handshake with Origin {origin} '
                                f'-> 200 with {shown}: CORS is not configured, '
                                'the browser refuses to read the response',
                                self._fix_allow_list(), 'cors-none'))
            elif len(allow) > 1:
                self.add(Result('cors', FAIL, f'handshake -> 200 with {shown}: '
                                'two allow values, browsers refuse the '
                                'response; the proxy adds CORS headers too',
                                'remove `add_header Access-Control-Allow-*` '
                                '(and any `more_set_headers`) from the proxy '
                                'location: let the Socket.IO server alone '
                                'answer CORS', 'cors-duplicate'))
            elif allow == ['*']:
                if _credentials(resp):
                    self.add(Result('cors', FAIL, f'handshake -> 200 with '
                                    f'{shown}: browsers refuse "*" on a '
                                    'credentialed request (withCredentials: '
                                    'true)', self._fix_allow_list(),
                                    'cors-wildcard-credentials'))
                else:
                    self.add(Result('cors', WARN, f'handshake -> 200 with '
                                    f'{shown}: works only for clients without '
                                    'withCredentials; any site may connect',
                                    self._fix_allow_list(), 'cors-wildcard'))
            elif allow != [origin]:
                self.add(Result('cors', FAIL, f'handshake with Origin {origin} '
                                f'-> 200 with {shown}: another origin, the '
                                'browser refuses it', self._fix_allow_list(),
                                'cors-other-origin'))
            else:
                self._check_reflection(shown, _credentials(resp))
            return
        if resp.status in (400, 403) and NOT_ACCEPTED_ORIGIN in resp.text or \
                resp.status == 403:
            own = self.target.origin
            try:
                own_resp = self.get(eio_query(self.path, transport='polling'),
                                    {'Origin': own})
            except WireError:
                own_resp = None
            if own_resp is not None and open_packet(own_resp):
                self.add(Result(
                    'cors', FAIL, f'handshake with Origin {origin} -> '
                    f'{resp.brief()} with {shown}; only the server\'s own '
                    f'origin {own} is accepted: CORS is not configured '
                    '(python-socketio default cors_allowed_origins=None is '
                    'same-origin only)', self._fix_allow_list(),
                    'cors-same-origin-only'))
            else:
                self.add(Result(
                    'cors', FAIL, f'handshake with Origin {origin} -> '
                    f'{resp.brief()} with {shown}: the origin is not in the '
                    'allow-list', self._fix_allow_list(), 'cors-not-allowed'))
            return
        self.add(Result('cors', SKIP, f'handshake -> {resp.brief()}: nothing '
                        'to judge'))

    def _fix_allow_list(self) -> str:
        origin = self.origin
        return self.fix(
            f'add {origin} to CORS_ALLOWED_ORIGINS (exact origins, comma-'
            'separated) and keep CORS_CREDENTIALS=true; nginx adds no CORS '
            'headers',
            f'allow exactly this origin on the Socket.IO server: python-'
            f'socketio cors_allowed_origins=["{origin}"], Node new Server('
            f'{{cors: {{origin: ["{origin}"], credentials: true}}}}); do not '
            'add CORS headers in the proxy as well')

    def _check_reflection(self, shown: str, credentials: bool):
        try:
            foreign = self.get(eio_query(self.path, transport='polling'),
                               {'Origin': FOREIGN_ORIGIN})
        except WireError:
            foreign = None
        if foreign is not None and open_packet(foreign) and \
                FOREIGN_ORIGIN in _allow_origins(foreign) and \
                _credentials(foreign):
            self.add(Result(
                'cors', FAIL, f'handshake -> 200 with {shown}, but the '
                f'made-up Origin {FOREIGN_ORIGIN} is echoed too, with '
                'credentials: this is "*" with credentials (python-socketio '
                'cors_allowed_origins="*" echoes every origin, so browsers '
                'accept it and any site can use the visitor\'s cookies)',
                self.fix('list the exact origins in CORS_ALLOWED_ORIGINS',
                         'replace "*" with the exact origins: python-socketio '
                         f'cors_allowed_origins=["{self.origin}"], Node '
                         f'cors: {{origin: ["{self.origin}"]}}'),
                'cors-wildcard-credentials'))
            return
        refused = ('a foreign origin is refused'
                   if foreign is not None and not open_packet(foreign)
                   else 'a foreign origin gets no allow header'
                   if foreign is not None and not _allow_origins(foreign)
                   else 'foreign origin not tested')
        if not credentials:
            self.add(Result('cors', WARN, f'handshake -> 200 with {shown}: no '
                            'Access-Control-Allow-Credentials, so clients with '
                            'withCredentials: true fail', self.fix(
                                'set CORS_CREDENTIALS=true',
                                'python-socketio cors_credentials=True, Node '
                                'cors: {credentials: true}'),
                            'cors-no-credentials'))
            return
        self.add(Result('cors', PASS, f'handshake -> 200 with {shown}; '
                        f'{refused}'))

    # -- preflight -----------------------------------------------------------
    def check_preflight(self):
        # A polling POST with extraHeaders (e.g. Authorization) makes the
        # browser ask first, with exactly these headers.
        wanted = ['authorization', 'content-type']
        headers = {'Origin': self.origin,
                   'Access-Control-Request-Method': 'POST',
                   'Access-Control-Request-Headers': ','.join(wanted)}
        query = eio_query(self.path, transport='polling')
        try:
            resp = request(self.target, 'OPTIONS', query, headers,
                           timeout=self.timeout)
        except WireError as exc:
            self.add(Result('preflight', FAIL, f'OPTIONS {query}: {exc}',
                            'the proxy must pass OPTIONS to the server',
                            'preflight-error'))
            return
        shown = _cors_seen(resp)
        allow = _allow_origins(resp)
        methods = ','.join(resp.values('Access-Control-Allow-Methods')).upper()
        allowed_headers = ','.join(
            resp.values('Access-Control-Allow-Headers')).lower()
        problems = []
        if not 200 <= resp.status < 300:
            problems.append(f'status {resp.status} (a preflight needs 2xx)')
        if len(allow) > 1:
            problems.append('two Access-Control-Allow-Origin values (the '
                            'proxy adds CORS too)')
        elif not allow:
            problems.append('no Access-Control-Allow-Origin')
        elif allow == ['*'] and _credentials(resp):
            problems.append('"*" with credentials')
        elif allow not in (['*'], [self.origin]):
            problems.append(f'Access-Control-Allow-Origin {allow[0]} is not '
                            f'{self.origin}')
        # Refused outright: the remaining header details would be noise.
        refused = not 200 <= resp.status < 300 or not allow
        if methods and 'POST' not in methods and '*' not in methods and \
                not refused:
            problems.append(f'Access-Control-Allow-Methods {methods} lacks POST')
        missing = [h for h in wanted if h not in allowed_headers
                   and '*' not in allowed_headers]
        if missing and not refused:
            problems.append(f'Access-Control-Allow-Headers lacks '
                            f'{", ".join(missing)}')
        if not _credentials(resp) and not refused:
            problems.append('no Access-Control-Allow-Credentials: true')
        saw = (f'OPTIONS (POST; {",".join(wanted)}) -> {resp.brief(40)} with '
               f'{shown}, Allow-Methods: {methods or "-"}, Allow-Headers: '
               f'{allowed_headers or "-"}')
        if not problems:
            self.add(Result('preflight', PASS, saw))
            return
        if len(allow) > 1:
            fix = ('remove `add_header Access-Control-Allow-*` from the proxy '
                   'location; the server answers the preflight itself')
        elif not 200 <= resp.status < 300 and resp.status not in (400, 403):
            fix = ('the proxy must forward OPTIONS to the Socket.IO server '
                   '(no `limit_except`, no `return` for OPTIONS)')
        else:
            fix = self._fix_allow_list()
        self.add(Result('preflight', FAIL, saw + ': ' + '; '.join(problems),
                        fix, 'preflight'))

    # -- WebSocket -------------------------------------------------------------
    def _origin_headers(self):
        return {'Origin': self.session_origin} if self.session_origin else {}

    def check_websocket(self):
        query = eio_query(self.path, transport='websocket')
        try:
            resp, ws = websocket(self.target, query, self._origin_headers(),
                                 self.timeout)
        except WireError as exc:
            self.add(Result('websocket', FAIL, f'WebSocket GET {query}: {exc}',
                            'check that the proxy passes WebSocket '
                            'connections', 'ws-error'))
            return
        if ws is None:
            self._websocket_refused(query, resp)
            return
        try:
            first = ws.recv(self.timeout)
        except (OSError, ConnectionError) as exc:
            first = f'({exc})'
        finally:
            ws.close()
        if not first.startswith('0{'):
            self.add(Result('websocket', FAIL, f'WebSocket -> 101 but then '
                            f'{first[:60]!r} instead of the open packet',
                            'check what sits between the client and the '
                            'server', 'ws-no-open'))
            return
        upgrade = self._upgrade_session()
        if upgrade is None:
            self.add(Result('websocket', PASS, 'WebSocket -> 101 Switching '
                            'Protocols and the open packet; a polling session '
                            'upgrades (2probe/3probe/5) like a browser\'s'))
        else:
            self.add(upgrade)

    def _websocket_refused(self, query: str, resp: Response):
        saw = f'WebSocket GET {query} -> {resp.brief()}'
        nginx = ('in the nginx location: `proxy_http_version 1.1; '
                 'proxy_set_header Upgrade $http_upgrade; proxy_set_header '
                 'Connection $connection_upgrade;` with `map $http_upgrade '
                 '$connection_upgrade { default upgrade; \'\' close; }`')
        if resp.status == 400 and NOT_ACCEPTED_ORIGIN in resp.text:
            self.add(Result('websocket', FAIL, saw + ': the origin is refused '
                            'on the WebSocket too', self._fix_allow_list(),
                            'ws-origin'))
        elif resp.status == 400 and ('Invalid websocket upgrade' in resp.text
                                     or '"code":3' in resp.text):
            self.add(Result('websocket', FAIL, saw + ': the server never saw '
                            '`Upgrade: websocket` - the proxy drops the '
                            'Upgrade and Connection headers (hop-by-hop, not '
                            'forwarded unless set)', nginx,
                            'ws-no-upgrade-header'))
        elif resp.status in (502, 503, 504):
            self.add(Result('websocket', FAIL, saw + ': the proxy could not '
                            'reach the server for the upgrade',
                            'check the proxy error log', 'ws-proxy-error'))
        elif resp.status == 200:
            self.add(Result('websocket', FAIL, saw + ': 200 without an '
                            'upgrade - the proxy answered the request as plain '
                            'HTTP (missing `Upgrade`/`Connection` headers or '
                            'HTTP/1.0 to the upstream)', nginx,
                            'ws-no-upgrade-header'))
        else:
            self.add(Result('websocket', FAIL, saw + ': `Upgrade: websocket` '
                            'reached the server (it did not say "Invalid '
                            'websocket upgrade") but the upgrade did not '
                            'complete - the proxy sends `Connection: close` '
                            'instead of `Connection: upgrade`',
                            'add `proxy_set_header Connection '
                            '$connection_upgrade;` (with the map above) and '
                            '`proxy_http_version 1.1;`',
                            'ws-no-connection-header'))

    def _upgrade_session(self) -> Optional[Result]:
        """Upgrade a polling session like a browser; None when it works."""
        session = Session(self, self.session_origin)
        if not session.sid:
            return Result('websocket', WARN, 'WebSocket -> 101, but no polling '
                          'session to upgrade: ' + session.handshake.brief(),
                          '', 'ws-no-session')
        query = eio_query(self.path, transport='websocket', sid=session.sid)
        try:
            resp, ws = websocket(self.target, query, self._origin_headers(),
                                 self.timeout)
        except WireError as exc:
            return Result('websocket', FAIL, f'upgrade of a polling session: '
                          f'{exc}', '', 'ws-error')
        if ws is None:
            if _is_unknown_session(resp):
                return Result('websocket', FAIL, f'WebSocket -> 101, but the '
                              f'upgrade of a polling session -> {resp.brief()}: '
                              'it reached an instance without the session',
                              'sticky sessions (see sticky)', 'sticky-none')
            return Result('websocket', FAIL, f'upgrade of a polling session '
                          f'-> {resp.brief()}', '', 'ws-upgrade')
        try:
            ws.send('2probe')
            answer = ws.recv(self.timeout)
            if answer != '3probe':
                return Result('websocket', FAIL, f'upgrade probe answered '
                              f'{answer[:40]!r}, not "3probe"', '', 'ws-upgrade')
            ws.send('5')
            ws.send('1')
        except (OSError, ConnectionError) as exc:
            return Result('websocket', FAIL, f'upgrade probe: {exc}', '',
                          'ws-upgrade')
        finally:
            ws.close()
        return None

    # -- sticky sessions -------------------------------------------------------
    def check_sticky(self):
        opts = self.options
        failures, instances, held = [], [], 0
        per_session = 2 + 2 * opts.polls
        for n in range(opts.connections):
            session = Session(self, self.session_origin)
            if not session.sid:
                failures.append(f'handshake {n + 1}: {session.handshake.brief()}')
                continue
            steps = [('POST "40"', lambda: session.post('40')),
                     ('GET', lambda: session.poll(self.timeout))]
            for i in range(opts.polls):
                steps += [(f'POST "40/doctor-{i},"',
                           lambda i=i: session.post(f'40/doctor-{i},')),
                          ('GET', lambda: session.poll(3.0))]
            try:
                for number, (what, step) in enumerate(steps, 1):
                    try:
                        resp = step()
                    except WireError as exc:
                        if what == 'GET' and 'timed out' in str(exc):
                            held += 1  # held by the session's own instance
                            continue
                        failures.append(f'session {n + 1} request {number} '
                                        f'({what}): {exc}')
                        break
                    if resp.status != 200:
                        failures.append(f'session {n + 1} request {number} '
                                        f'({what}) -> {resp.brief(60)}')
                        break
                    if what == 'GET' and number == 2:
                        instances.append(self._welcome_instance(resp.text))
            finally:
                session.close()
        seen = sorted({i for i in instances if i})
        where = f'; instances seen: {", ".join(seen)}' if seen else ''
        if not failures:
            self.add(Result('sticky', PASS, f'{opts.connections} sessions x '
                            f'{per_session} requests (POSTs and polls) each '
                            f'reached their own instance{where}'))
            return
        unknown = any(m in f for f in failures for m in UNKNOWN_SESSION)
        fix = self.fix(
            'the kit routes by the sid prefix (nginx/nginx.conf.template, map '
            '$arg_sid): check that every instance has a distinct INSTANCE_NAME '
            'and that nginx was rendered for all of them',
            'add affinity in the balancer: nginx `ip_hash;` (or `hash '
            '$remote_addr consistent;`) in the upstream, or route by the sid '
            'like this kit; or use transports: ["websocket"] only')
        self.add(Result(
            'sticky', FAIL, f'{len(failures)} of {opts.connections} sessions '
            f'lost: {failures[0]}' + (f' (+{len(failures) - 1} more)'
                                      if len(failures) > 1 else '') +
            (': "Session ID unknown" - requests of one session reach '
             'different instances, no affinity' if unknown else '') + where,
            fix, 'sticky-none' if unknown else 'sticky-error'))

    @staticmethod
    def _welcome_instance(text: str) -> Optional[str]:
        """The instance named in the kit's `welcome` event, if any."""
        for packet in decode_payload(text):
            if packet.startswith('42'):
                try:
                    event = json.loads(packet[2:])
                except ValueError:
                    continue
                if isinstance(event, list) and len(event) > 1 and \
                        isinstance(event[1], dict) and 'instance' in event[1]:
                    return str(event[1]['instance'])
        return None

    # -- namespace -------------------------------------------------------------
    def check_namespace(self):
        reply = self._connect_namespace(self.namespace)
        if reply is None:
            return
        if reply.startswith('40'):
            self.add(Result('namespace', PASS, f'connect to namespace '
                            f'{self.namespace} -> {reply[:60]!r}'))
            return
        message = reply
        hint = ''
        if self.namespace != '/':
            root = self._connect_namespace('/', report=False)
            if root and root.startswith('40'):
                hint = '; the default namespace "/" accepts'
        if any(m in reply for m in ('Unable to connect', 'Invalid namespace')):
            self.add(Result('namespace', FAIL, f'connect to namespace '
                            f'{self.namespace} -> {message[:80]!r}: the '
                            f'server has no such namespace{hint}',
                            'connect with the namespace the server registers '
                            '(io(url + "/ns")), or register it on the server '
                            '(@sio.on(..., namespace="/ns") / io.of("/ns"))',
                            'namespace-rejected'))
        else:
            self.add(Result('namespace', FAIL, f'connect to namespace '
                            f'{self.namespace} -> {message[:80]!r}: the '
                            f'connect handler refused it (auth?){hint}',
                            'send what the connect handler expects (auth '
                            'payload, cookie)', 'namespace-refused'))

    def _connect_namespace(self, namespace: str, report: bool = True
                           ) -> Optional[str]:
        session = Session(self, self.session_origin)
        try:
            if not session.sid:
                if report:
                    self.add(Result('namespace', SKIP, 'no session: '
                                    + session.handshake.brief()))
                return None
            packet = '40' if namespace == '/' else f'40{namespace},'
            try:
                post = session.post(packet)
                resp = session.poll(self.timeout) if post.status == 200 else post
            except WireError as exc:
                if report:
                    self.add(Result('namespace', FAIL, f'connect to {namespace}'
                                    f': {exc}', '', 'namespace-error'))
                return None
            if resp.status != 200:
                if report:
                    self.add(Result('namespace', SKIP, f'connect to {namespace}'
                                    f' -> {resp.brief()} (see sticky)'))
                return None
            for p in decode_payload(resp.text):
                if p.startswith(('40', '44')):
                    return p
            return resp.text
        finally:
            session.close()

    # -- slow: idle connections past the ping window ----------------------------
    def check_slow(self):
        interval, timeout = self.ping
        window = interval + timeout
        results = {}

        def poll():
            results['poll'] = self._hold_poll(window)

        def socket_():
            results['ws'] = self._hold_websocket(window)

        threads = [threading.Thread(target=poll, daemon=True),
                   threading.Thread(target=socket_, daemon=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(window + 4 * self.timeout + interval)
        problems = [r for r in (results.get('poll'), results.get('ws')) if r]
        if len(results) < 2:
            problems.append('a probe did not finish in time')
        if not problems:
            self.add(Result('slow', PASS, f'a long-poll and an idle WebSocket '
                            f'stayed open past pingInterval + pingTimeout '
                            f'({window:.0f} s)'))
            return
        self.add(Result('slow', FAIL, '; '.join(problems) + ': the proxy '
                        'closes idle connections sooner than Engine.IO talks',
                        self.fix('raise PROXY_TIMEOUT (nginx proxy_read_timeout'
                                 ' / proxy_send_timeout) above '
                                 f'{2 * window:.0f} s',
                                 'raise nginx `proxy_read_timeout` (and '
                                 '`proxy_send_timeout`) well above pingInterval'
                                 f' + pingTimeout ({window:.0f} s), e.g. '
                                 f'{max(120, 2 * window):.0f}s'),
                        'slow-timeout'))

    def _hold_poll(self, window: float) -> Optional[str]:
        session = Session(self, self.session_origin)
        if not session.sid:
            return f'long-poll: no session ({session.handshake.brief()})'
        start = time.monotonic()
        try:
            session.post('40' if self.namespace == '/' else f'40{self.namespace},')
            session.poll(self.timeout)  # the namespace reply
            for _ in range(int(window) + 2):  # bounded: one ping per interval
                elapsed = time.monotonic() - start
                if elapsed > window + 1:
                    return None
                try:
                    resp = session.poll(window + self.timeout)
                except WireError as exc:
                    return (f'long-poll cut after '
                            f'{time.monotonic() - start:.1f} s: {exc}')
                if resp.status != 200:
                    return (f'long-poll cut after {time.monotonic() - start:.1f}'
                            f' s: {resp.brief(40)}')
                if '2' in decode_payload(resp.text):
                    session.post('3')
            return None
        except WireError as exc:
            return f'long-poll: {exc}'
        finally:
            session.close()

    def _hold_websocket(self, window: float) -> Optional[str]:
        query = eio_query(self.path, transport='websocket')
        try:
            resp, ws = websocket(self.target, query, self._origin_headers(),
                                 self.timeout)
        except WireError as exc:
            return f'idle WebSocket: {exc}'
        if ws is None:
            return f'idle WebSocket: {resp.brief(40)} (see websocket)'
        start = time.monotonic()
        try:
            ws.recv(self.timeout)  # open packet
            ws.send('40' if self.namespace == '/' else f'40{self.namespace},')
            while time.monotonic() - start < window + 1:
                remaining = window + 1 - (time.monotonic() - start)
                try:
                    message = ws.recv(max(0.1, remaining))
                except TimeoutError:
                    return None
                except OSError as exc:
                    if 'timed out' in str(exc):
                        return None
                    raise
                if message == '2':
                    ws.send('3')
            return None
        except (OSError, ConnectionError) as exc:
            return f'idle WebSocket closed after {time.monotonic() - start:.1f} s ({exc})'
        finally:
            ws.close()
