"""Room admission: what every `enter_room` must pass, whoever calls it (an
application's handler, a Namespace class, recovery putting rooms back).

- No room named like a session id: every client is alone in the room named
  after its sid, and a client let into another's would receive its private
  messages, on every instance.
- At most MAX_ROOMS_PER_CLIENT rooms, counted on the rooms the manager
  really holds for the client (its own sid room aside).
- With AUTH_MODE=jwt, only the rooms its token's JWT_ROOMS_CLAIM allows.
"""
from typing import Optional

from socketio_kit.config.security import Security
from socketio_kit.policy.auth import Authenticator, is_sid_like

MAX_ROOM_LENGTH = 128


class RoomRefused(ValueError):
    """An enter_room the kit's room policy refused; the message says why."""


class RoomAdmission:
    def __init__(self, security: Security, auth: Authenticator):
        self.max_rooms = security.max_rooms_per_client
        self.auth = auth

    def refusal(self, manager, sid, namespace: str, room,
                claims: Optional[dict]) -> Optional[str]:
        """Why the client sid may not enter room, or None; manager is the
        kit's (its RoomIndex counts the client's rooms)."""
        if isinstance(room, str):
            if not 0 < len(room) <= MAX_ROOM_LENGTH:
                return f'room names are 1-{MAX_ROOM_LENGTH} characters'
            if is_sid_like(room):
                return 'room names shaped like session ids are reserved'
        held = manager.joined_rooms(sid, namespace)     # socketio_kit/cluster/rooms.py
        if room in held or room == sid:
            return None
        if len(held) >= self.max_rooms:
            return f'already in {self.max_rooms} rooms (MAX_ROOMS_PER_CLIENT)'
        if not self.auth.may_join(claims, str(room)):
            return f'not authorized to join {room!r}'
        return None
