"""Authentication on the Socket.IO handshake, and room authorization.

AUTH_MODE=none (the local demo's default): every client may connect, and
may join any room whose name is not a session id.

AUTH_MODE=jwt: the client sends `auth: {token}` with its CONNECT (the
socket.io-client option), and the token is verified with PyJWT: signature
(HS256 with JWT_SECRET, or RS256/ES256 with JWT_PUBLIC_KEY_FILE), expiry
(`exp` required), audience and issuer. A refusal is a `connect_error` whose
message says why (`unauthorized: token expired`). The claims go into the
client's state; its JWT_ROOMS_CLAIM (a list of room names, `*` wildcards
allowed) says which rooms it may join, and the kit's `/_kit` namespace requires
ADMIN_ROLE in its JWT_ROLE_CLAIM.
"""
import fnmatch
import re
import time
from typing import Optional

import jwt
import socketio

from socketio_kit.config.security import Security

# Session ids are "<instance>.<20 characters>" (socketio_kit/transport/engine.py): every client
# is alone in the room named after its sid, so such a name is never a room.
SID_LIKE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_-]{0,31}\.[A-Za-z0-9_-]{20}$')
REASONS = (
    (jwt.ExpiredSignatureError, 'token expired'),
    (jwt.ImmatureSignatureError, 'token not valid yet'),
    (jwt.InvalidAudienceError, 'wrong audience'),
    (jwt.InvalidIssuerError, 'wrong issuer'),
    (jwt.MissingRequiredClaimError, 'token lacks a required claim'),
    (jwt.InvalidSignatureError, 'bad signature'),
    (jwt.InvalidAlgorithmError, 'algorithm not allowed'),
)


class Unauthorized(socketio.exceptions.ConnectionRefusedError):
    """A refused CONNECT: the client's connect_error says `unauthorized: why`."""

    def __init__(self, why: str):
        super().__init__(f'unauthorized: {why}')
        self.why = why


def is_sid_like(room: str) -> bool:
    return bool(SID_LIKE.match(room))


class Authenticator:
    """Verifies handshake tokens and decides who may join which room."""

    def __init__(self, security: Security):
        self.security = security
        self.enabled = security.auth_mode == 'jwt'

    def claims(self, auth) -> Optional[dict]:
        """The verified claims of a CONNECT's `auth`, None when auth is off;
        raises Unauthorized."""
        if not self.enabled:
            return None
        token = auth.get('token') if isinstance(auth, dict) else None
        if not token:
            raise Unauthorized('missing token')
        if not isinstance(token, str) or len(token) > 8192:
            raise Unauthorized('invalid token')
        sec = self.security
        try:
            return jwt.decode(
                token, sec.jwt_key, algorithms=[sec.jwt_algorithm],
                audience=sec.jwt_audience, issuer=sec.jwt_issuer,
                options={'require': ['exp', 'aud', 'iss']}, leeway=5)
        except jwt.PyJWTError as exc:
            for kind, why in REASONS:
                if isinstance(exc, kind):
                    raise Unauthorized(why) from None
            raise Unauthorized('invalid token') from None

    def may_join(self, claims: Optional[dict], room: str) -> bool:
        """Room authorization: the rooms claim's names and patterns."""
        if not self.enabled:
            return True
        allowed = (claims or {}).get(self.security.jwt_rooms_claim)
        if isinstance(allowed, str):
            allowed = [allowed]
        if not isinstance(allowed, list):
            return False
        return any(isinstance(p, str) and fnmatch.fnmatchcase(room, p)
                   for p in allowed[:100])

    def is_admin(self, claims: Optional[dict]) -> bool:
        roles = (claims or {}).get(self.security.jwt_role_claim)
        if isinstance(roles, str):
            roles = [roles]
        return isinstance(roles, list) and self.security.admin_role in roles


def issue_token(security: Security, secret: str, subject: str, rooms,
                roles=(), ttl: int = 3600) -> str:
    """An HS256 token these instances accept: audience, issuer and the claim
    names come from the same settings they verify with."""
    now = int(time.time())
    return jwt.encode({
        'sub': subject, 'aud': security.jwt_audience,
        'iss': security.jwt_issuer, 'iat': now, 'exp': now + ttl,
        security.jwt_rooms_claim: list(rooms),
        security.jwt_role_claim: list(roles),
    }, secret, algorithm='HS256')


def demo_token(security: Security, subject: str, rooms, roles=(),
               ttl: int = 3600) -> str:
    """A token for the demo page (DEMO_TOKENS=true only: anyone who can reach
    the endpoint gets one, so it is not for production)."""
    return issue_token(security, security.demo_secret, subject, rooms, roles, ttl)
