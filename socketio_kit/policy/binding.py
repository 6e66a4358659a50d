"""Sessions that a stolen sid cannot take over (SESSION_BINDING=cookie).

Engine.IO's sid is a bearer token: whoever knows it can POST and GET as that
client over long-polling, or upgrade its session to their own WebSocket. Here
the polling handshake also sets an HttpOnly cookie holding a random secret
(`<SESSION_COOKIE>_eio`, Path=SOCKETIO_PATH), kept with the session on its
instance; every later request that names the sid (polling GET and POST, and
the WebSocket upgrade) must carry the same secret, or gets a 400. A session
opened directly on WebSocket never names its sid again, so it needs none.

Page scripts cannot read the cookie (HttpOnly), so a sid leaked through a
log, a URL or an XSS-free bug is not enough. What it costs: clients must keep
cookies between requests (browsers with `withCredentials`, python-socketio,
socket.io-client in Node with `withCredentials: true`), and the browser
must send the cookie: the page and the API on the same site, or
SameSite=None; Secure over TLS where the browser still allows third-party
cookies. SESSION_BINDING=address binds to the client's address instead (as
nginx saw it, X-Real-IP): no cookie needed, but anyone behind the same NAT
passes. SESSION_BINDING=off restores plain Engine.IO.
"""
import hmac
import json
import secrets
from urllib.parse import parse_qs

ENVIRON_KEY = 'kit.binding'


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


class SessionBinding:
    """The WSGI-side check; `sessions` maps a sid to its handshake environ
    (python-socketio's `Server.environ`)."""

    def __init__(self, cookie_name: str, path: str, samesite: str,
                 secure: bool, sessions: dict, mode: str = 'cookie'):
        self.by_address = mode == 'address'
        self.name = f'{cookie_name}_eio'
        attrs = [f'Path={path}/', 'HttpOnly', f'SameSite={samesite.title()}']
        if secure:
            attrs.append('Secure')
        self.attrs = '; '.join(attrs)
        self.sessions = sessions

    def __call__(self, environ, start_response, app):
        """Serve an Engine.IO request through `app`, binding or checking."""
        sid = parse_qs(environ.get('QUERY_STRING', '')).get('sid')
        if not sid:
            return app(environ, self._binding_start(environ, start_response))
        session = self.sessions.get(sid[0])
        if session is not None:
            expected = session.get(ENVIRON_KEY)
            given = (client_address(environ) if self.by_address
                     else cookie_value(environ, self.name))
            if not expected or not given or not hmac.compare_digest(
                    expected.encode(), given.encode()):
                return self._refuse(start_response)
        return app(environ, start_response)

    def _binding_start(self, environ, start_response):
        """A handshake: its session keeps the secret the cookie carries."""
        if self.by_address:
            environ[ENVIRON_KEY] = client_address(environ)
            return start_response
        secret = secrets.token_urlsafe(24)
        environ[ENVIRON_KEY] = secret
        cookie = f'{self.name}={secret}; {self.attrs}'

        def start(status, headers, exc_info=None):
            if status.startswith('200'):
                headers = list(headers) + [('Set-Cookie', cookie)]
            return start_response(status, headers, exc_info)
        return start

    @staticmethod
    def _refuse(start_response):
        body = json.dumps({'code': 3, 'message': 'Bad request: this session '
                           'is bound to another client (SESSION_BINDING)'}
                          ).encode()
        start_response('400 BAD REQUEST', [
            ('Content-Type', 'application/json'),
            ('Content-Length', str(len(body)))])
        return [body]
