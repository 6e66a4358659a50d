"""What a recovering session gets back: stream offsets, the entries after
one that were addressed to the session, and whether the stream still holds
all of them (retention)."""
import base64
import json

import redis
from socketio.packet import Packet

PAGE = 1000           # XRANGE entries per round trip when replaying
MAX_PAGES = 200       # a replay reads at most this many pages


def parse_offset(offset):
    """(ms, seq) of a stream id string, or None if it is not one."""
    if not isinstance(offset, str) or len(offset) > 41:
        return None
    ms, _, seq = offset.partition('-')
    if not (ms.isdigit() and seq.isdigit()):
        return None
    return int(ms), int(seq)


def after(a: str, b: str) -> bool:
    """Whether stream id a comes after stream id b."""
    return parse_offset(a) > parse_offset(b)


def message_data(args: list):
    """(data, binary) for an emit message: binary attachments as base64,
    the way python-socketio's PubSubManager carries them."""
    if not Packet.data_is_binary(args):
        return args, False
    args, attachments = Packet.deconstruct_binary(args)
    return [args, *[base64.b64encode(a).decode() for a in attachments]], True


def event_args(message) -> list:
    """The event's arguments in an emit message, binary ones restored."""
    data = message['data']
    if message.get('binary'):
        data = Packet.reconstruct_binary(
            data[0], [base64.b64decode(a) for a in data[1:]])
    return list(data)


def addressed(msg, namespace, sid, rooms) -> bool:
    """Whether a stream entry was an event for this session."""
    if msg.get('method') != 'emit' or msg.get('callback') is not None or \
            (msg.get('namespace') or '/') != namespace:
        return False
    skip = msg.get('skip_sid')
    if skip == sid or (isinstance(skip, list) and sid in skip):
        return False
    room = msg.get('room')
    if room is None:
        return True
    if isinstance(room, list):
        return any(r in rooms for r in room)
    return room in rooms


def retained(client, stream: str, offset: str) -> bool:
    """Whether every entry after offset is still in the stream."""
    try:
        info = client.xinfo_stream(stream)
    except redis.ResponseError:     # no stream: nothing after anything
        return True
    deleted = info.get('max-deleted-entry-id')
    if isinstance(deleted, bytes):
        deleted = deleted.decode()
    if parse_offset(deleted) is not None:   # Redis >= 7.0 says exactly
        return not after(deleted, offset)
    first = info.get('first-entry')
    return first is None or not after(first[0].decode(), offset)


def missed(client, stream: str, namespace: str, sid: str, rooms, offset: str):
    """[(offset, message)] of the entries after offset addressed to the
    session sid in rooms, in stream order."""
    rooms = set(rooms) | {sid}
    cursor, out = '(' + offset, []
    for _ in range(MAX_PAGES):
        entries = client.xrange(stream, min=cursor, max='+', count=PAGE)
        for entry_id, fields in entries:
            cursor = '(' + entry_id.decode()
            msg = json.loads(fields[b'm'])
            if addressed(msg, namespace, sid, rooms):
                out.append((entry_id.decode(), msg))
        if len(entries) < PAGE:
            break
    return out
