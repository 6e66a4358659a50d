"""The stream's entries: their ids (offsets, which a client keeps to
recover) and an emit's arguments as an entry carries them (binary as base64,
as python-socketio's PubSubManager does)."""
import base64

from socketio.packet import Packet


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
