"""slow (--slow): do a long-poll and an idle WebSocket survive past
pingInterval + pingTimeout, or does the proxy cut them first?"""
import threading
import time
from typing import List, Optional

from doctor.fixes import fix
from doctor.probe import Probe, Session, connect_packet
from doctor.result import FAIL, PASS, Result
from doctor.wire import WireError, decode_payload, eio_query, websocket


def check(probe: Probe) -> List[Result]:
    interval, timeout = probe.handshake.ping
    window = interval + timeout
    found = {}
    probes = {'poll': hold_poll, 'ws': hold_websocket}

    def hold(key):
        found[key] = probes[key](probe, window)

    threads = [threading.Thread(target=hold, args=(key,), daemon=True)
               for key in probes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(window + 4 * probe.timeout + interval)
    problems = [found[key] for key in probes if found.get(key)]
    if len(found) < len(probes):
        problems.append('a probe did not finish in time')
    if not problems:
        return [Result('slow', PASS, f'a long-poll and an idle WebSocket stayed '
                       f'open past pingInterval + pingTimeout ({window:.0f} s)')]
    return [Result('slow', FAIL, '; '.join(problems) + ': the proxy closes idle'
                   ' connections sooner than Engine.IO talks',
                   fix(probe, 'proxy-timeout', window=window, twice=2 * window,
                       suggested=max(120, 2 * window)), 'slow-timeout')]


def hold_poll(probe: Probe, window: float) -> Optional[str]:
    """Keep a polling session alive past window; what went wrong, or None."""
    session = Session(probe)
    if not session.sid:
        return f'long-poll: no session ({session.handshake.brief()})'
    start = time.monotonic()
    try:
        session.post(connect_packet(probe.namespace, probe.options.token))
        session.poll(probe.timeout)  # the namespace reply
        for _ in range(int(window) + 2):  # bounded: one ping per interval
            if time.monotonic() - start > window + 1:
                return None
            try:
                resp = session.poll(window + probe.timeout)
            except WireError as exc:
                return f'long-poll cut after {time.monotonic() - start:.1f} s: {exc}'
            if resp.status != 200:
                return (f'long-poll cut after {time.monotonic() - start:.1f} s: '
                        f'{resp.brief(40)}')
            if '2' in decode_payload(resp.text):
                session.post('3')
        return None
    except WireError as exc:
        return f'long-poll: {exc}'
    finally:
        session.close()


def hold_websocket(probe: Probe, window: float) -> Optional[str]:
    """Keep a WebSocket idle past window; what went wrong, or None."""
    query = eio_query(probe.path, transport='websocket')
    try:
        resp, ws = websocket(probe.target, query, probe.origin_headers(),
                             probe.timeout)
    except WireError as exc:
        return f'idle WebSocket: {exc}'
    if ws is None:
        return f'idle WebSocket: {resp.brief(40)} (see websocket)'
    start = time.monotonic()
    try:
        ws.recv(probe.timeout)  # open packet
        ws.send(connect_packet(probe.namespace, probe.options.token))
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
