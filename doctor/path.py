"""path and protocol: is there an Engine.IO v4 server at the path, and what
does it say to v2 clients (EIO=3)?"""
from typing import List, Optional

from doctor.fixes import fix
from doctor.probe import NOT_ACCEPTED_ORIGIN, Probe, is_refused_origin
from doctor.result import FAIL, PASS, Result
from doctor.wire import WireError, eio_query, open_packet

# Where Socket.IO servers are commonly mounted, tried when --path answers 404.
CANDIDATE_PATHS = ('/socket.io', '/ws/socket.io', '/api/socket.io', '/ws',
                   '/socket', '/io', '/realtime', '/engine.io', '/sio')
REDIRECTS = (301, 302, 303, 307, 308)


def check(probe: Probe) -> List[Result]:
    shake = probe.handshake
    query = shake.query
    if shake.error:
        return [Result('path', FAIL, f'GET {probe.target.origin}{query}: '
                       f'{shake.error}', 'check the URL and that the balancer '
                       'runs (make local-ps / make ps)', 'unreachable')]
    resp = shake.response
    if open_packet(resp):
        packet = shake.packet
        return [Result('path', PASS, f'GET {query} -> 200 open packet (sid '
                       f'{packet["sid"]}, pingInterval '
                       f'{packet.get("pingInterval")} ms, upgrades '
                       f'{packet.get("upgrades")})')]
    if is_refused_origin(resp):
        return [Result('path', PASS, f'GET {query} -> 400 '
                       f'"{NOT_ACCEPTED_ORIGIN}": Engine.IO answers here (it '
                       f'refuses the origin, see cors)')]
    if resp.status in REDIRECTS:
        return [Result('path', FAIL, f'GET {query} -> {resp.status} redirect to'
                       f' {resp.first("Location")}', 'connect to the final URL '
                       '(scheme and path) directly: Engine.IO requests must not '
                       'be redirected', 'path-redirect')]
    found = find_path(probe)
    if found:
        return [Result('path', FAIL, f'GET {query} -> {resp.brief()}; an '
                       f'Engine.IO handshake succeeds at {found}',
                       fix(probe, 'path-other', found=found, path=probe.path),
                       'path-404')]
    return [Result('path', FAIL, f'GET {query} -> {resp.brief()}; no Engine.IO '
                   f'handshake at the usual paths ({", ".join(CANDIDATE_PATHS)})',
                   'find the path the server is mounted at (python-socketio '
                   'socketio_path, Node `path`) and make the proxy forward it '
                   '(nginx `location <path>/`)', 'path-404')]


def find_path(probe: Probe) -> Optional[str]:
    """The first usual path, other than --path, where Engine.IO answers."""
    for candidate in CANDIDATE_PATHS:
        path = probe.target.prefix + candidate
        if path == probe.path:
            continue
        try:
            resp = probe.get(eio_query(path, transport='polling'),
                             timeout=min(probe.timeout, 3))
        except WireError:
            continue
        if open_packet(resp) or is_refused_origin(resp):
            return path
    return None


def check_protocol(probe: Probe) -> List[Result]:
    query3 = f'{probe.path}/?EIO=3&transport=polling'
    try:
        v3 = probe.get(query3, probe.origin_headers())
    except WireError as exc:
        v3 = None
        v3_text = f'EIO=3 -> {exc}'
    else:
        v3_text = f'EIO=3 -> {v3.brief(60)}'
    if v3 is not None and v3.status == 200 and '0{' in v3.text[:16]:
        note = 'v2 clients (socket.io-client 2.x) are accepted (allowEIO3)'
    elif v3 is not None and v3.status == 400:
        note = ('v2 clients (socket.io-client 2.x) cannot connect; they need '
                'socket.io-client >= 3')
    else:
        note = 'no clear answer for v2 clients'
    return [Result('protocol', PASS, f'EIO=4 -> 200 open packet; {v3_text}: '
                   f'{note}')]
