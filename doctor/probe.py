"""The doctor's view of one deployment: the probe, its handshake, sessions.

A Probe is built once per run (`Probe.parse(options).open()`): it parses the URL, asks
/_kit/healthz whether the target is the kit, and makes the first Engine.IO
handshake with the page's Origin. The checks read it and never change it.
"""
import dataclasses
import json
from typing import List, Optional, Tuple

from control.base import KIT_PREFIX
from doctor.result import Options
from doctor.wire import Response, Target, WireError, decode_payload, eio_query, open_packet, request

# An origin no deployment allows: whether the server accepts it tells a strict
# allow-list from one that echoes every origin.
FOREIGN_ORIGIN = 'http://doctor-probe.invalid'
# Bodies that mean "this Engine.IO server does not know that session":
# python-engineio says "Invalid session <sid>", Node engine.io says
# {"code":1,"message":"Session ID unknown"}.
UNKNOWN_SESSION = ('Invalid session', 'Session ID unknown')
NOT_ACCEPTED_ORIGIN = 'Not an accepted origin'
# Engine.IO's defaults, used until a handshake says otherwise.
DEFAULT_PING = (25.0, 20.0)


@dataclasses.dataclass(frozen=True)
class Handshake:
    """The first polling handshake, made with the page's Origin.

    `packet` is an open packet later checks can build on: the one answered to
    the page's Origin or, when the server refuses that origin, one answered
    without an Origin header (`origin` is then None, like a non-browser
    client). `error` is set when the request failed outright.
    """
    query: str
    response: Optional[Response] = None
    error: str = ''
    packet: Optional[dict] = None
    origin: Optional[str] = None

    @property
    def ping(self) -> Tuple[float, float]:
        """(pingInterval, pingTimeout) in seconds."""
        try:
            return (self.packet['pingInterval'] / 1000.0,
                    self.packet['pingTimeout'] / 1000.0)
        except (KeyError, TypeError):
            return DEFAULT_PING


@dataclasses.dataclass(frozen=True)
class Probe:
    """One deployment as the page on `origin` sees it."""
    options: Options
    target: Target
    path: str
    origin: str
    namespace: str
    kit: Optional[str] = None  # the instance's name when the kit answered
    handshake: Optional[Handshake] = None

    @classmethod
    def parse(cls, options: Options) -> 'Probe':
        """The probe for options, before any request (ValueError if the URL
        is not an http(s) URL)."""
        target = Target.parse(options.url)
        return cls(options, target,
                   target.prefix + '/' + options.path.strip('/'),
                   options.origin.rstrip('/'),
                   '/' + options.namespace.strip('/'))

    def open(self) -> 'Probe':
        """This probe with the kit detected and the first handshake made."""
        return dataclasses.replace(self, kit=self.detect_kit(),
                                   handshake=self.first_handshake())

    @property
    def timeout(self) -> float:
        return self.options.timeout

    def get(self, path: str, headers=None, timeout=None) -> Response:
        return request(self.target, 'GET', path, headers or {},
                       timeout=timeout or self.timeout)

    def fix(self, kit: str, other: str) -> str:
        """The kit's own setting when the target is the kit, else `other`."""
        return kit if self.kit else other

    @property
    def session_origin(self) -> Optional[str]:
        """The Origin later sessions send (None when the server refused it)."""
        return self.handshake.origin if self.handshake else None

    def origin_headers(self) -> dict:
        origin = self.session_origin
        return {'Origin': origin} if origin else {}

    def detect_kit(self) -> Optional[str]:
        try:
            resp = self.get(f'{self.target.prefix}{KIT_PREFIX}/healthz', timeout=2)
            body = json.loads(resp.text)
        except (WireError, ValueError):
            return None
        if isinstance(body, dict) and {'instance', 'redis'} <= set(body):
            return str(body['instance'])
        return None

    def first_handshake(self) -> Handshake:
        query = eio_query(self.path, transport='polling')
        try:
            resp = self.get(query, {'Origin': self.origin})
        except WireError as exc:
            return Handshake(query, error=str(exc))
        packet = open_packet(resp)
        if packet:
            return Handshake(query, resp, packet=packet, origin=self.origin)
        if resp.status == 400 and NOT_ACCEPTED_ORIGIN in resp.text:
            # Engine.IO is there and refuses the origin (the cors check says
            # why): continue without an Origin header.
            try:
                plain = open_packet(self.get(query))
            except WireError:
                plain = None
            return Handshake(query, resp, packet=plain)
        return Handshake(query, resp)


class Session:
    """One Engine.IO polling session, opened the way a browser opens it."""

    def __init__(self, probe: Probe):
        self.probe = probe
        self.headers = probe.origin_headers()
        self.handshake = probe.get(eio_query(probe.path, transport='polling'),
                                   self.headers)
        self.open = open_packet(self.handshake)
        self.sid = self.open and self.open['sid']
        cookie = self.handshake.cookies()
        if cookie:  # as a browser would, e.g. the kit's session binding
            self.headers = {**self.headers, 'Cookie': cookie}

    def _query(self) -> str:
        return eio_query(self.probe.path, transport='polling', sid=self.sid)

    def post(self, text: str) -> Response:
        return request(self.probe.target, 'POST', self._query(),
                       {**self.headers,
                        'Content-Type': 'text/plain;charset=UTF-8'},
                       text.encode(), self.probe.timeout)

    def poll(self, timeout: float) -> Response:
        return request(self.probe.target, 'GET', self._query(), self.headers,
                       timeout=timeout)

    def close(self):
        try:
            self.post('1')
        except WireError:
            pass


def connect_packet(namespace: str, token: str = '') -> str:
    """The Socket.IO CONNECT packet for a namespace, with `auth: {token}`
    when the doctor was given --token."""
    auth = json.dumps({'token': token}) if token else ''
    return f'40{auth}' if namespace == '/' else f'40{namespace},{auth}'


def is_unknown_session(resp: Response) -> bool:
    return resp.status == 400 and any(m in resp.text for m in UNKNOWN_SESSION)


def is_refused_origin(resp: Response) -> bool:
    return resp.status == 400 and NOT_ACCEPTED_ORIGIN in resp.text


def allow_origins(resp: Response) -> List[str]:
    """Every Access-Control-Allow-Origin value, a comma-joined one split."""
    values = []
    for value in resp.values('Access-Control-Allow-Origin'):
        values += [v.strip() for v in value.split(',') if v.strip()]
    return values


def credentials(resp: Response) -> bool:
    return any(v.strip().lower() == 'true'
               for v in resp.values('Access-Control-Allow-Credentials'))


def cors_seen(resp: Response) -> str:
    allow = resp.values('Access-Control-Allow-Origin')
    creds = resp.values('Access-Control-Allow-Credentials')
    shown = ', '.join(f'Access-Control-Allow-Origin: {v}' for v in allow) or \
        'no Access-Control-Allow-Origin'
    if creds:
        shown += ', Access-Control-Allow-Credentials: ' + ', '.join(creds)
    return shown


def welcome_instance(text: str) -> Optional[str]:
    """The instance named in the kit's `welcome` event, if any."""
    for packet in decode_payload(text):
        if not packet.startswith('42'):
            continue
        try:
            event = json.loads(packet[2:])
        except ValueError:
            continue
        if isinstance(event, list) and len(event) > 1 and \
                isinstance(event[1], dict) and 'instance' in event[1]:
            return str(event[1]['instance'])
    return None
