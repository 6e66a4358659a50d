"""cors and preflight: does exactly the page's origin get exactly one allow
header, with credentials, on the handshake and on a preflight?"""
from typing import List

from doctor.fixes import allow_list, fix
from doctor.probe import (
    FOREIGN_ORIGIN,
    Probe,
    allow_origins,
    cors_seen,
    credentials,
    is_refused_origin,
)
from doctor.result import FAIL, PASS, SKIP, WARN, Result
from doctor.wire import WireError, eio_query, open_packet, request

# A polling POST with extraHeaders (e.g. Authorization) makes the browser ask
# first, with exactly these headers.
PREFLIGHT_HEADERS = ('authorization', 'content-type')


def check(probe: Probe) -> List[Result]:
    resp = probe.handshake.response
    origin = probe.origin
    shown = cors_seen(resp)
    if open_packet(resp):
        allow = allow_origins(resp)
        if not allow:
            return [Result('cors', FAIL, f'handshake with Origin {origin} -> '
                           f'200 with {shown}: CORS is not configured, the '
                           'browser refuses to read the response',
                           allow_list(probe), 'cors-none')]
        if len(allow) > 1:
            return [Result('cors', FAIL, f'handshake -> 200 with {shown}: two '
                           'allow values, browsers refuse the response; the '
                           'proxy adds CORS headers too', 'remove `add_header '
                           'Access-Control-Allow-*` (and any `more_set_headers`)'
                           ' from the proxy location: let the Socket.IO server '
                           'alone answer CORS', 'cors-duplicate')]
        if allow == ['*'] and credentials(resp):
            return [Result('cors', FAIL, f'handshake -> 200 with {shown}: '
                           'browsers refuse "*" on a credentialed request '
                           '(withCredentials: true)', allow_list(probe),
                           'cors-wildcard-credentials')]
        if allow == ['*']:
            return [Result('cors', WARN, f'handshake -> 200 with {shown}: works '
                           'only for clients without withCredentials; any site '
                           'may connect', allow_list(probe), 'cors-wildcard')]
        if allow != [origin]:
            return [Result('cors', FAIL, f'handshake with Origin {origin} -> '
                           f'200 with {shown}: another origin, the browser '
                           'refuses it', allow_list(probe), 'cors-other-origin')]
        return [_reflection(probe, shown, credentials(resp))]
    if is_refused_origin(resp) or resp.status == 403:
        return [_refused(probe, resp, shown)]
    return [Result('cors', SKIP, f'handshake -> {resp.brief()}: nothing to '
                   'judge')]


def _refused(probe: Probe, resp, shown: str) -> Result:
    """The page's origin is refused: is CORS off, or the origin not listed?"""
    own = probe.target.origin
    saw = f'handshake with Origin {probe.origin} -> {resp.brief()} with {shown}'
    # The kit always accepts its own origin (a page it serves) next to its
    # allow-list: there, a refused origin is one missing from the list.
    if probe.kit:
        return Result('cors', FAIL, f'{saw}: the origin is not in the allow-list',
                      allow_list(probe), 'cors-not-allowed')
    try:
        own_resp = probe.get(eio_query(probe.path, transport='polling'),
                             {'Origin': own})
    except WireError:
        own_resp = None
    if own_resp is not None and open_packet(own_resp):
        return Result('cors', FAIL, f'{saw}; only the server\'s own origin '
                      f'{own} is accepted: CORS is not configured '
                      '(python-socketio default cors_allowed_origins=None is '
                      'same-origin only)', allow_list(probe),
                      'cors-same-origin-only')
    return Result('cors', FAIL, f'{saw}: the origin is not in the allow-list',
                  allow_list(probe), 'cors-not-allowed')


def _reflection(probe: Probe, shown: str, with_credentials: bool) -> Result:
    """The page's origin is allowed: is every other origin allowed too?"""
    try:
        foreign = probe.get(eio_query(probe.path, transport='polling'),
                            {'Origin': FOREIGN_ORIGIN})
    except WireError:
        foreign = None
    if foreign is not None and open_packet(foreign) and \
            FOREIGN_ORIGIN in allow_origins(foreign) and credentials(foreign):
        return Result(
            'cors', FAIL, f'handshake -> 200 with {shown}, but the made-up '
            f'Origin {FOREIGN_ORIGIN} is echoed too, with credentials: this is '
            '"*" with credentials (python-socketio cors_allowed_origins="*" '
            'echoes every origin, so browsers accept it and any site can use '
            'the visitor\'s cookies)',
            fix(probe, 'exact-origins', origin=probe.origin),
            'cors-wildcard-credentials')
    if not with_credentials:
        return Result('cors', WARN, f'handshake -> 200 with {shown}: no '
                      'Access-Control-Allow-Credentials, so clients with '
                      'withCredentials: true fail', fix(probe, 'credentials'),
                      'cors-no-credentials')
    if foreign is None:
        refused = 'foreign origin not tested'
    elif not open_packet(foreign):
        refused = 'a foreign origin is refused'
    elif not allow_origins(foreign):
        refused = 'a foreign origin gets no allow header'
    else:
        refused = 'foreign origin not tested'
    return Result('cors', PASS, f'handshake -> 200 with {shown}; {refused}')


def check_preflight(probe: Probe) -> List[Result]:
    headers = {'Origin': probe.origin,
               'Access-Control-Request-Method': 'POST',
               'Access-Control-Request-Headers': ','.join(PREFLIGHT_HEADERS)}
    query = eio_query(probe.path, transport='polling')
    try:
        resp = request(probe.target, 'OPTIONS', query, headers,
                       timeout=probe.timeout)
    except WireError as exc:
        return [Result('preflight', FAIL, f'OPTIONS {query}: {exc}',
                       'the proxy must pass OPTIONS to the server',
                       'preflight-error')]
    allow = allow_origins(resp)
    methods = ','.join(resp.values('Access-Control-Allow-Methods')).upper()
    allowed_headers = ','.join(
        resp.values('Access-Control-Allow-Headers')).lower()
    saw = (f'OPTIONS (POST; {",".join(PREFLIGHT_HEADERS)}) -> '
           f'{resp.brief(40)} with {cors_seen(resp)}, Allow-Methods: '
           f'{methods or "-"}, Allow-Headers: {allowed_headers or "-"}')
    problems = _preflight_problems(probe, resp, allow, methods, allowed_headers)
    if not problems:
        return [Result('preflight', PASS, saw)]
    if len(allow) > 1:
        advice = ('remove `add_header Access-Control-Allow-*` from the proxy '
                  'location; the server answers the preflight itself')
    elif not 200 <= resp.status < 300 and resp.status not in (400, 403):
        advice = ('the proxy must forward OPTIONS to the Socket.IO server (no '
                  '`limit_except`, no `return` for OPTIONS)')
    else:
        advice = allow_list(probe)
    return [Result('preflight', FAIL, saw + ': ' + '; '.join(problems), advice,
                   'preflight')]


def _preflight_problems(probe, resp, allow, methods, allowed_headers):
    problems = []
    ok_status = 200 <= resp.status < 300
    if not ok_status:
        problems.append(f'status {resp.status} (a preflight needs 2xx)')
    if len(allow) > 1:
        problems.append('two Access-Control-Allow-Origin values (the proxy '
                        'adds CORS too)')
    elif not allow:
        problems.append('no Access-Control-Allow-Origin')
    elif allow == ['*'] and credentials(resp):
        problems.append('"*" with credentials')
    elif allow not in (['*'], [probe.origin]):
        problems.append(f'Access-Control-Allow-Origin {allow[0]} is not '
                        f'{probe.origin}')
    if not ok_status or not allow:
        return problems  # refused outright: header details would be noise
    if methods and 'POST' not in methods and '*' not in methods:
        problems.append(f'Access-Control-Allow-Methods {methods} lacks POST')
    missing = [h for h in PREFLIGHT_HEADERS if h not in allowed_headers
               and '*' not in allowed_headers]
    if missing:
        problems.append(f'Access-Control-Allow-Headers lacks '
                        f'{", ".join(missing)}')
    if not credentials(resp):
        problems.append('no Access-Control-Allow-Credentials: true')
    return problems
