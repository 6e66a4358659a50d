"""websocket: does a WebSocket reach the server (101 and the open packet),
and does a polling session upgrade the way a browser's does?"""
from typing import List, Optional

from doctor.binding import refusal, refusal_fix
from doctor.fixes import NGINX_CONNECTION, NGINX_UPGRADE, allow_list
from doctor.probe import Probe, Session, is_refused_origin, is_unknown_session
from doctor.result import FAIL, PASS, WARN, Result
from doctor.wire import Response, WireError, eio_query, websocket


def check(probe: Probe) -> List[Result]:
    query = eio_query(probe.path, transport='websocket')
    try:
        resp, ws = websocket(probe.target, query, probe.origin_headers(),
                             probe.timeout)
    except WireError as exc:
        return [Result('websocket', FAIL, f'WebSocket GET {query}: {exc}',
                       'check that the proxy passes WebSocket connections',
                       'ws-error')]
    if ws is None:
        return [refused(probe, query, resp)]
    try:
        first = ws.recv(probe.timeout)
    except (OSError, ConnectionError) as exc:
        first = f'({exc})'
    finally:
        ws.close()
    if not first.startswith('0{'):
        return [Result('websocket', FAIL, f'WebSocket -> 101 but then '
                       f'{first[:60]!r} instead of the open packet',
                       'check what sits between the client and the server',
                       'ws-no-open')]
    return [upgrade_session(probe) or Result(
        'websocket', PASS, 'WebSocket -> 101 Switching Protocols and the open '
        'packet; a polling session upgrades (2probe/3probe/5) like a '
        'browser\'s')]


def refused(probe: Probe, query: str, resp: Response) -> Result:
    """Name what kept the WebSocket handshake from answering 101."""
    saw = f'WebSocket GET {query} -> {resp.brief()}'
    if is_refused_origin(resp):
        return Result('websocket', FAIL, saw + ': the origin is refused on the '
                      'WebSocket too', allow_list(probe), 'ws-origin')
    if resp.status == 400 and ('Invalid websocket upgrade' in resp.text
                               or '"code":3' in resp.text):
        return Result('websocket', FAIL, saw + ': the server never saw '
                      '`Upgrade: websocket` - the proxy drops the Upgrade and '
                      'Connection headers (hop-by-hop, not forwarded unless '
                      'set)', NGINX_UPGRADE, 'ws-no-upgrade-header')
    if resp.status in (502, 503, 504):
        return Result('websocket', FAIL, saw + ': the proxy could not reach '
                      'the server for the upgrade', 'check the proxy error log',
                      'ws-proxy-error')
    if resp.status == 200:
        return Result('websocket', FAIL, saw + ': 200 without an upgrade - the '
                      'proxy answered the request as plain HTTP (missing '
                      '`Upgrade`/`Connection` headers or HTTP/1.0 to the '
                      'upstream)', NGINX_UPGRADE, 'ws-no-upgrade-header')
    return Result('websocket', FAIL, saw + ': `Upgrade: websocket` reached the '
                  'server (it did not say "Invalid websocket upgrade") but the '
                  'upgrade did not complete - the proxy sends `Connection: '
                  'close` instead of `Connection: upgrade`', NGINX_CONNECTION,
                  'ws-no-connection-header')


def upgrade_session(probe: Probe) -> Optional[Result]:
    """Upgrade a polling session like a browser; None when it works."""
    session = Session(probe)
    if not session.sid:
        return Result('websocket', WARN, 'WebSocket -> 101, but no polling '
                      'session to upgrade: ' + session.handshake.brief(), '',
                      'ws-no-session')
    query = eio_query(probe.path, transport='websocket', sid=session.sid)
    try:
        resp, ws = websocket(probe.target, query, session.headers,
                             probe.timeout)
    except WireError as exc:
        return Result('websocket', FAIL, f'upgrade of a polling session: {exc}',
                      '', 'ws-error')
    if ws is None:
        message = refusal(resp)
        if message:
            fault, advice = refusal_fix(probe, message)
            return Result('websocket', FAIL, f'WebSocket -> 101, but the upgrade'
                          f' of a polling session -> 400 {message!r}', advice,
                          fault)
        if is_unknown_session(resp):
            return Result('websocket', FAIL, f'WebSocket -> 101, but the upgrade'
                          f' of a polling session -> {resp.brief()}: it reached '
                          'an instance without the session',
                          'sticky sessions (see sticky)', 'sticky-none')
        return Result('websocket', FAIL, f'upgrade of a polling session -> '
                      f'{resp.brief()}', '', 'ws-upgrade')
    try:
        ws.send('2probe')
        answer = ws.recv(probe.timeout)
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
