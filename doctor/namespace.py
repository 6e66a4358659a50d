"""namespace: does the server accept a Socket.IO connect to --namespace?"""
from typing import List, Optional, Tuple

from doctor.probe import Probe, Session, connect_packet
from doctor.result import FAIL, PASS, SKIP, Result
from doctor.wire import WireError, decode_payload


def check(probe: Probe) -> List[Result]:
    namespace = probe.namespace
    reply, problem = connect(probe, namespace)
    if problem:
        return [problem]
    shown = f'connect to namespace {namespace} -> {reply[:80]!r}'
    if reply.startswith('40'):
        return [Result('namespace', PASS, f'connect to namespace {namespace} '
                       f'-> {reply[:60]!r}')]
    hint = ''
    if namespace != '/':
        root, _ = connect(probe, '/')
        if root and root.startswith('40'):
            hint = '; the default namespace "/" accepts'
    if any(m in reply for m in ('Unable to connect', 'Invalid namespace')):
        return [Result('namespace', FAIL, f'{shown}: the server has no such '
                       f'namespace{hint}', 'connect with the namespace the '
                       'server registers (io(url + "/ns")), or register it on '
                       'the server (@sio.on(..., namespace="/ns") / '
                       'io.of("/ns"))', 'namespace-rejected')]
    return [Result('namespace', FAIL, f'{shown}: the connect handler refused it'
                   f' (auth?){hint}', 'send what the connect handler expects '
                   '(auth payload, cookie)', 'namespace-refused')]


def connect(probe: Probe, namespace: str) -> Tuple[Optional[str], Optional[Result]]:
    """(the server's reply to a CONNECT, or None and the Result that says
    why there is none)."""
    session = Session(probe)
    try:
        if not session.sid:
            return None, Result('namespace', SKIP, 'no session: '
                                + session.handshake.brief())
        try:
            post = session.post(connect_packet(namespace, probe.options.token))
            resp = session.poll(probe.timeout) if post.status == 200 else post
        except WireError as exc:
            return None, Result('namespace', FAIL, f'connect to {namespace}: '
                                f'{exc}', '', 'namespace-error')
        if resp.status != 200:
            return None, Result('namespace', SKIP, f'connect to {namespace} -> '
                                f'{resp.brief()} (see sticky)')
        for packet in decode_payload(resp.text):
            if packet.startswith(('40', '44')):
                return packet, None
        return resp.text, None
    finally:
        session.close()
