"""The server side of one WebSocket connection (RFC 6455, RFC 7692).

Framing, the handshake and the compression negotiation; socketio_kit/transport/connection.py
holds the connection itself. The kit replaces eventlet's and
simple-websocket's WebSocket servers because the data plane needs four things
they do not give:
- a compression policy: `permessage-deflate` is accepted only when
  WS_COMPRESSION=on, so the policy holds behind any proxy;
- writes that never block the emitting greenlet: a broadcast appends the same
  frame bytes to every member, and the frames queued for one client during one
  hub iteration leave in one send (coalescing);
- a cap on the bytes queued for a client (MAX_CLIENT_BUFFER_BYTES): a client
  that stops reading is disconnected, never buffered without bound;
- a reader that enforces the message limit across fragments, unmasks at C
  speed and yields to other greenlets while a client streams data.
"""
import base64
import hashlib
import struct
import zlib
from typing import Optional

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
CLOSE_NORMAL, CLOSE_GOING_AWAY, CLOSE_PROTOCOL = 1000, 1001, 1002
CLOSE_BAD_DATA, CLOSE_TOO_BIG = 1007, 1009
GUID = b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
RECV_SIZE = 65536
DEFLATE_TAIL = b'\x00\x00\xff\xff'
# Level 1: most of the gain on JSON at a fraction of the CPU of the default 6.
DEFLATE_LEVEL = 1


class HandshakeError(ValueError):
    """The upgrade request is not a valid WebSocket handshake."""


class ProtocolError(ValueError):
    """The client broke RFC 6455; the connection closes with `code`."""

    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code


# Close codes a client may send (RFC 6455 7.4.1 and IANA's registry; 3000-4999
# belong to libraries and applications). 1005, 1006 and 1015 are never sent.
VALID_CLOSE_CODES = frozenset(range(1000, 1004)) | frozenset(range(1007, 1015))


def close_code(payload: bytes) -> int:
    """The code to answer a client's close frame with: its own, echoed, or
    1000 when it sent none. A payload RFC 6455 forbids raises ProtocolError:
    one byte, a code no endpoint may send (1002), a reason that is not UTF-8
    (1007)."""
    if not payload:
        return CLOSE_NORMAL
    if len(payload) == 1:
        raise ProtocolError(CLOSE_PROTOCOL, 'close frame with a one-byte payload')
    code = struct.unpack('!H', payload[:2])[0]
    if code not in VALID_CLOSE_CODES and not 3000 <= code <= 4999:
        raise ProtocolError(CLOSE_PROTOCOL, f'invalid close code {code}')
    try:
        payload[2:].decode('utf-8')
    except UnicodeDecodeError:
        raise ProtocolError(CLOSE_BAD_DATA, 'close reason is not UTF-8') from None
    return code


def frame(payload: bytes, opcode: int = OP_TEXT, rsv1: bool = False) -> bytes:
    """One unmasked, unfragmented server frame."""
    b0 = 0x80 | opcode | (0x40 if rsv1 else 0)
    size = len(payload)
    if size < 126:
        header = bytes((b0, size))
    elif size < 65536:
        header = struct.pack('!BBH', b0, 126, size)
    else:
        header = struct.pack('!BBQ', b0, 127, size)
    return header + payload


def deflate(payload: bytes, wbits: int) -> bytes:
    """A permessage-deflate body with no context takeover: the same bytes for
    every client, so a broadcast is compressed once, not once per member."""
    comp = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -wbits)
    data = comp.compress(payload) + comp.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4] if data.endswith(DEFLATE_TAIL) else data


def unmask(data: bytes, mask: bytes) -> bytes:
    """XOR with the 4-byte mask, as one big-integer operation (C speed)."""
    size = len(data)
    if not size:
        return b''
    key = int.from_bytes((mask * (size // 4 + 1))[:size], 'little')
    return (int.from_bytes(data, 'little') ^ key).to_bytes(size, 'little')


class Outgoing:
    """One message encoded once, framed once per variant, for many clients."""
    __slots__ = ('payload', 'opcode', 'threshold', '_plain', '_deflated')

    def __init__(self, data, threshold: int):
        if isinstance(data, str):
            self.payload, self.opcode = data.encode(), OP_TEXT
        else:
            self.payload, self.opcode = bytes(data), OP_BINARY
        self.threshold = threshold
        self._plain = None
        self._deflated = None

    def frame_for(self, wbits: int) -> bytes:
        """The frame for a client whose deflate window is wbits (0: none)."""
        if wbits and len(self.payload) >= self.threshold:
            if self._deflated is None:
                self._deflated = {}
            framed = self._deflated.get(wbits)
            if framed is None:
                framed = self._deflated[wbits] = frame(
                    deflate(self.payload, wbits), self.opcode, rsv1=True)
            return framed
        if self._plain is None:
            self._plain = frame(self.payload, self.opcode)
        return self._plain


def _deflate_params(offer: str):
    """The parameters of one permessage-deflate offer, or None when it has
    one we must decline (unknown, repeated, or a bad value)."""
    params = {}
    for part in offer.split(';')[1:]:
        name, _, value = part.strip().partition('=')
        name, value = name.strip().lower(), value.strip().strip('"')
        if name in params:
            return None
        if name in ('server_no_context_takeover', 'client_no_context_takeover'):
            if value:
                return None
        elif name == 'server_max_window_bits':
            # zlib cannot write raw deflate with an 8-bit window.
            if not (value.isdigit() and 9 <= int(value) <= 15):
                return None
        elif name == 'client_max_window_bits':
            if value and not (value.isdigit() and 8 <= int(value) <= 15):
                return None
        else:
            return None
        params[name] = value
    return params


def negotiate_deflate(header: Optional[str]):
    """Answer a Sec-WebSocket-Extensions offer: (response header, server
    window bits) for the first permessage-deflate offer we can accept, or
    None. Neither side keeps its compression context: the server compresses
    each broadcast once for everyone (see `deflate`), and a client's messages
    inflate without a per-connection window (RFC 7692 lets the server ask
    for client_no_context_takeover even when the client did not offer it)."""
    for offer in (header or '').split(','):
        if offer.split(';')[0].strip().lower() != 'permessage-deflate':
            continue
        params = _deflate_params(offer)
        if params is None:
            continue
        answer = ['permessage-deflate', 'server_no_context_takeover',
                  'client_no_context_takeover']
        wbits = 15
        if 'server_max_window_bits' in params:
            wbits = int(params['server_max_window_bits'])
            answer.append(f'server_max_window_bits={wbits}')
        return '; '.join(answer), wbits
    return None


def handshake_response(environ, compression: bool):
    """The 101 response bytes and the negotiated deflate (or None)."""
    key = environ.get('HTTP_SEC_WEBSOCKET_KEY', '')
    if environ.get('HTTP_SEC_WEBSOCKET_VERSION') != '13':
        raise HandshakeError('Sec-WebSocket-Version must be 13')
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError
    except ValueError:
        raise HandshakeError('invalid Sec-WebSocket-Key') from None
    accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())
    lines = [b'HTTP/1.1 101 Switching Protocols', b'Upgrade: websocket',
             b'Connection: Upgrade', b'Sec-WebSocket-Accept: ' + accept]
    deflate_answer = None
    if compression:
        deflate_answer = negotiate_deflate(
            environ.get('HTTP_SEC_WEBSOCKET_EXTENSIONS'))
        if deflate_answer:
            lines.append(b'Sec-WebSocket-Extensions: '
                         + deflate_answer[0].encode())
    return b'\r\n'.join(lines) + b'\r\n\r\n', deflate_answer
