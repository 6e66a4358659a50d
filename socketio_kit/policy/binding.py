"""Sessions that a stolen sid cannot take over (SESSION_BINDING).

Engine.IO's sid is a bearer token: whoever knows it can POST and GET as that
client over long-polling, or upgrade its session to their own WebSocket. It
travels in the URL of every request of the session, so it lands in access
logs, proxy logs and browser histories. Nothing else socket.io-client sends
holds a secret: each request carries the URL (EIO, transport, t, sid), the
browser's own headers (Origin, User-Agent: public, and a script can set them),
and cookies only with `withCredentials: true` (a browser sends none across
origins without it; Node keeps a cookie jar only with it). So what a thief who
learned only the sid lacks is one of two things: the cookie the handshake set,
when the client sends cookies back, or the client's network address.

- auto (the default): the polling handshake sets an HttpOnly cookie
  (`<SESSION_COOKIE>_eio`, Path=SOCKETIO_PATH/) holding a random secret and
  keeps the client's address, both with the session on its instance. A
  request naming the sid (polling GET and POST, the WebSocket upgrade) passes
  with that cookie, from any address, and once one has, the session is the
  cookie's alone; without it (the stock `io(url)` across origins) it passes
  only from the handshake's address. Clients that keep cookies get the
  cookie's protection, the others the address's, and both work unchanged.
- cookie: the cookie only. Clients that do not send it back (no
  `withCredentials` across origins, or a browser that blocks the page's
  third-party cookies) cannot long-poll: every request gets 400.
- address: the address only (nginx's X-Real-IP, else the peer's); no cookie.
- off: plain Engine.IO.

What a binding does not stop:
- by address (auto without the cookie, address): anyone who shares the
  client's public address (a NAT, carrier-grade NAT, a corporate proxy, a VPN's
  exit) and learned the sid; the log line that leaked the sid usually names
  that address too. Behind another proxy, X-Real-IP is that proxy's address
  unless nginx's real_ip module restores the client's; where it varies between
  requests of one session (a fleet of proxies), clients without the cookie get
  400s, each session's first logged with reason `address`. A client whose
  address changes mid-session (Wi-Fi to mobile data) loses that session and
  reconnects (RECOVERY_WINDOW keeps what it missed).
- in auto, until the first request that carries the cookie (milliseconds
  after the handshake for a client that keeps cookies), the address only.
- the cookie: page scripts cannot read it (HttpOnly), but malware on the
  client can, and so can anyone on the path of a plain-http connection.
- sessions opened directly on WebSocket never name their sid again: there is
  nothing to bind.

A refused request gets a 400 whose body says why in one sentence, with the
CORS headers the engine gave its origin's handshakes (so a page can read it),
and is logged at WARNING in one line (the sid's prefix, never the sid; the
reason; both addresses), once a minute per reason and address: a client that
reconnects in a loop, or a thief that retries, is one line.
"""
import hmac
import json
import logging
import secrets
import time
from typing import Optional
from urllib.parse import parse_qs

from socketio_kit.observability.logs import fields

log = logging.getLogger('socketio_kit.policy.binding')

MODES = ('auto', 'cookie', 'address')  # SESSION_BINDING=off builds no binding
# What a session's handshake environ (python-socketio's Server.environ) keeps.
ENVIRON_KEY = 'kit.binding'            # the cookie's secret
ADDRESS_KEY = 'kit.binding.address'    # the handshake's address
PROVEN_KEY = 'kit.binding.proven'      # auto: a request carried the cookie
# Why a request was refused, in one sentence: the 400's body and the log line.
REASONS = {
    'cookie-missing': 'this request carries no {cookie} cookie, and its '
                      'session is bound to the one its handshake set '
                      '(SESSION_BINDING=cookie): connect with withCredentials: '
                      'true, or set SESSION_BINDING=auto',
    'cookie-mismatch': "this request's {cookie} cookie is not the one its "
                       "session's handshake set (SESSION_BINDING={mode})",
    'cookie-dropped': 'this request carries no {cookie} cookie, though '
                      'earlier requests of its session did '
                      '(SESSION_BINDING=auto)',
    'address': "this request comes from another address than its session's "
               'handshake{without} (SESSION_BINDING={mode})',
}
# The origins whose handshakes' CORS headers a refusal repeats.
MAX_ORIGINS = 64
# A refusal is logged once per (reason, address) in this many seconds: a
# client that reconnects in a loop, or a thief that retries, is one line.
LOG_EVERY = 60.0
MAX_LOGGED = 1000


# A longer Cookie header counts as none: no cookie of the kit's is near it.
MAX_COOKIE_HEADER = 8192


def cookie_value(environ, name):
    """The value of cookie `name` on the request, or None. A plain split,
    not http.cookies: its unquoting takes quadratic time on crafted quoted
    values before Python 3.11.10 (CVE-2024-7592), seconds of a worker per
    request, and the kit's cookie values are never quoted."""
    header = environ.get('HTTP_COOKIE', '')
    if len(header) > MAX_COOKIE_HEADER:
        return None
    for part in header.split(';'):
        key, sep, value = part.strip().partition('=')
        if sep and key == name:
            return value.strip().strip('"') or None
    return None


def client_address(environ):
    """The client's address: nginx's X-Real-IP, else the peer's."""
    return environ.get('HTTP_X_REAL_IP') or environ.get('REMOTE_ADDR') or '-'


def sid_prefix(sid: str) -> str:
    """What a log line may show of a sid: its instance and 4 characters."""
    instance, dot, rest = sid.partition('.')
    return f'{instance}.{rest[:4]}...' if dot else f'{sid[:6]}...'


def _same(expected, given) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(
        expected.encode(), given.encode())


class SessionBinding:
    """The WSGI-side check; `sessions` maps a sid to its handshake environ
    (python-socketio's `Server.environ`)."""

    def __init__(self, cookie_name: str, path: str, samesite: str,
                 secure: bool, sessions: dict, mode: str = 'auto',
                 clock=time.monotonic):
        if mode not in MODES:
            raise ValueError(f'SESSION_BINDING={mode!r} is not one of {MODES}')
        self.mode = mode
        self.by_cookie = mode in ('auto', 'cookie')
        self.by_address = mode in ('auto', 'address')
        self.name = f'{cookie_name}_eio'
        attrs = [f'Path={path}/', 'HttpOnly', f'SameSite={samesite.title()}']
        if secure:
            attrs.append('Secure')
        self.attrs = '; '.join(attrs)
        self.sessions = sessions
        without = f' and without its {self.name} cookie' if mode == 'auto' else ''
        self.reasons = {key: text.format(cookie=self.name, mode=mode,
                                         without=without)
                        for key, text in REASONS.items()}
        # origin -> the Access-Control-Allow-* headers its handshake got
        self.cors = {}
        self.clock = clock
        self.logged = {}  # (reason, address) -> when it was last logged

    def __call__(self, environ, start_response, app):
        """Serve an Engine.IO request through `app`, binding or checking."""
        sid = parse_qs(environ.get('QUERY_STRING', '')).get('sid')
        if not sid:
            return app(environ, self._binding_start(environ, start_response))
        session = self.sessions.get(sid[0])
        if session is not None:
            reason = self.refusal(session, environ)
            if reason:
                return self._refuse(environ, start_response, sid[0], session,
                                    reason)
        return app(environ, start_response)

    def refusal(self, session: dict, environ) -> Optional[str]:
        """None when the request comes from the session's client, else why
        not (a key of REASONS)."""
        if self.by_cookie:
            given = cookie_value(environ, self.name)
            if _same(session.get(ENVIRON_KEY), given):
                if self.by_address and not session.get(PROVEN_KEY):
                    session[PROVEN_KEY] = True  # the cookie's alone from now on
                return None
            if not self.by_address:
                return 'cookie-missing' if given is None else 'cookie-mismatch'
            if session.get(PROVEN_KEY):
                return 'cookie-dropped' if given is None else 'cookie-mismatch'
        if _same(session.get(ADDRESS_KEY), client_address(environ)):
            return None
        return 'address'

    def _binding_start(self, environ, start_response):
        """A handshake: its session keeps what later requests must match."""
        if environ.get('REQUEST_METHOD') != 'GET':
            return start_response
        cookie = None
        if self.by_cookie:
            secret = secrets.token_urlsafe(24)
            environ[ENVIRON_KEY] = secret
            cookie = f'{self.name}={secret}; {self.attrs}'
        if self.by_address:
            environ[ADDRESS_KEY] = client_address(environ)
        origin = environ.get('HTTP_ORIGIN')

        def start(status, headers, exc_info=None):
            if status.startswith('200'):
                if origin and origin not in self.cors and \
                        len(self.cors) < MAX_ORIGINS:
                    self.cors[origin] = [
                        (k, v) for k, v in headers
                        if k.lower().startswith('access-control-allow-')]
                if cookie:
                    headers = list(headers) + [('Set-Cookie', cookie)]
            return start_response(status, headers, exc_info)
        return start

    def _refuse(self, environ, start_response, sid, session, reason):
        """400, saying why, and one log line (see LOG_EVERY)."""
        why = self.reasons[reason]
        key, now = (reason, client_address(environ)), self.clock()
        last = self.logged.get(key)
        if last is None or now - last >= LOG_EVERY:
            if len(self.logged) >= MAX_LOGGED:
                self.logged.clear()
            self.logged[key] = now
            shown = sid_prefix(sid)
            what = ('the WebSocket upgrade' if environ.get('HTTP_UPGRADE')
                    else f"a polling {environ.get('REQUEST_METHOD', '?')}")
            log.warning('refused %s of session %s from %s (its handshake '
                        'came from %s): %s', what, shown,
                        client_address(environ),
                        session.get(ADDRESS_KEY) or client_address(session),
                        why, extra=fields(sid=shown, event='binding_refused',
                                          reason=reason))
        body = json.dumps({'code': 3, 'message': f'Bad request: {why}.'}
                          ).encode()
        start_response('400 BAD REQUEST', [
            ('Content-Type', 'application/json'),
            ('Content-Length', str(len(body))),
            ('Cache-Control', 'no-store'),
            *self.cors.get(environ.get('HTTP_ORIGIN'), ())])
        return [body]
