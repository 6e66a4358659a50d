"""The rooms of each client, beside python-socketio's members of each room.

python-socketio's manager keeps room -> members only, so a client's rooms
(`get_rooms`) cost a pass over every room of the namespace, one per
connected client at least. Room admission (socketio_kit/policy/rooms.py)
counts a client's rooms on every `enter_room`; this index makes that a
lookup. Only rooms other than the client's own sid room are kept, and a
client that joined none costs nothing.
"""
import socketio


class RoomIndex(socketio.Manager):
    """Mixin for the kit's managers: `sid_rooms[(namespace, sid)]`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sid_rooms = {}

    def basic_enter_room(self, sid, namespace, room, eio_sid=None):
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        if room is not None and room != sid:
            self.sid_rooms.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid, namespace, room):
        super().basic_leave_room(sid, namespace, room)
        joined = self.sid_rooms.get((namespace, sid))
        if joined is not None:
            joined.discard(room)
            if not joined:
                del self.sid_rooms[(namespace, sid)]

    def basic_close_room(self, room, namespace):
        members = list(self.rooms.get(namespace, {}).get(room, ()))
        super().basic_close_room(room, namespace)
        for sid in members:
            joined = self.sid_rooms.get((namespace, sid))
            if joined is not None:
                joined.discard(room)
                if not joined:
                    del self.sid_rooms[(namespace, sid)]

    def basic_disconnect(self, sid, namespace, **kwargs):
        super().basic_disconnect(sid, namespace, **kwargs)
        self.sid_rooms.pop((namespace, sid), None)

    def joined_rooms(self, sid, namespace):
        """The rooms sid joined in namespace, its own sid room aside."""
        return self.sid_rooms.get((namespace, sid), ())

    def get_rooms(self, sid, namespace):
        if not self.is_connected(sid, namespace):
            return []
        return [sid, *self.joined_rooms(sid, namespace)]
