"""Engine.IO v4 / Socket.IO v5 text framing, as pure functions.

An Engine.IO packet is one type digit plus data: 0 open, 1 close, 2 ping,
3 pong, 4 message, 5 upgrade, 6 noop. A Socket.IO packet rides inside an
Engine.IO message: type digit (0 connect, 1 disconnect, 2 event, 3 ack,
4 connect error, 5/6 binary event/ack), then an optional "/nsp,", an optional
ack id, then JSON. Long-polling payloads join packets with the record
separator 0x1E. This client is binary-free: binary packets are reported, not
decoded.
"""
import json
from dataclasses import dataclass
from typing import Any, List, Optional

EIO_OPEN, EIO_CLOSE, EIO_PING, EIO_PONG, EIO_MESSAGE, EIO_UPGRADE, EIO_NOOP = \
    '0123456'
SIO_CONNECT, SIO_DISCONNECT, SIO_EVENT, SIO_ACK, SIO_CONNECT_ERROR, \
    SIO_BINARY_EVENT, SIO_BINARY_ACK = '0123456'
RECORD_SEPARATOR = '\x1e'

_dumps = json.JSONEncoder(separators=(',', ':')).encode


class ProtocolError(ValueError):
    """A packet this client cannot parse."""


@dataclass
class SioPacket:
    type: str
    namespace: str = '/'
    id: Optional[int] = None
    data: Any = None


def decode_payload(body: str) -> List[str]:
    """Split a long-polling payload into Engine.IO packets."""
    return body.split(RECORD_SEPARATOR) if body else []


def encode_payload(packets: List[str]) -> str:
    return RECORD_SEPARATOR.join(packets)


def decode_sio(text: str) -> SioPacket:
    """Decode the Socket.IO packet carried by an Engine.IO message ("4...")
    without its leading Engine.IO type digit."""
    if not text:
        raise ProtocolError('empty Socket.IO packet')
    kind, i = text[0], 1
    if kind not in '0123456':
        raise ProtocolError(f'unknown Socket.IO packet type {kind!r}')
    if kind in (SIO_BINARY_EVENT, SIO_BINARY_ACK):
        raise ProtocolError('binary packets are not supported by this client')
    namespace = '/'
    if i < len(text) and text[i] == '/':
        end = text.find(',', i)
        if end < 0:
            namespace, i = text[i:], len(text)
        else:
            namespace, i = text[i:end], end + 1
    start = i
    while i < len(text) and text[i].isdigit():
        i += 1
    ack_id = int(text[start:i]) if i > start else None
    try:
        data = json.loads(text[i:]) if i < len(text) else None
    except ValueError as exc:
        raise ProtocolError(f'bad JSON in Socket.IO packet: {exc}') from None
    return SioPacket(kind, namespace, ack_id, data)


def encode_sio(kind: str, data: Any = None, ack_id: Optional[int] = None,
               namespace: str = '/') -> str:
    """The Engine.IO message ("4" + Socket.IO packet) for one packet."""
    out = EIO_MESSAGE + kind
    if namespace != '/':
        out += namespace + ','
    if ack_id is not None:
        out += str(ack_id)
    if data is not None:
        out += _dumps(data)
    return out


def encode_event(event: str, data: Any = None, ack_id: Optional[int] = None,
                 namespace: str = '/') -> str:
    args = [event] if data is None else [event, data]
    return encode_sio(SIO_EVENT, args, ack_id, namespace)


def encode_connect(auth: Any = None, namespace: str = '/') -> str:
    return encode_sio(SIO_CONNECT, auth, None, namespace)


def decode_open(text: str) -> dict:
    """The handshake data of an Engine.IO open packet ("0{...}")."""
    if not text or text[0] != EIO_OPEN:
        raise ProtocolError(f'expected an Engine.IO open packet, got {text[:40]!r}')
    try:
        return json.loads(text[1:])
    except ValueError as exc:
        raise ProtocolError(f'bad JSON in open packet: {exc}') from None
