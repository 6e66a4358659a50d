"""The reading half of a WebSocket connection (socketio_kit/transport/connection.py): frames to
messages, with the limits a hostile client meets first.

Message size is checked from each frame's header, across fragments (each
counting FRAME_COST, at most MAX_FRAGMENTS of them), before anything is
buffered; unmasking runs at C speed (app/websocket.unmask); the
reader lets other greenlets run every 64 KiB and every MESSAGES_PER_TURN
messages, so a client that streams data cannot starve the others.
"""
import struct
import zlib
from typing import Union

from socketio_kit.transport.websocket import (
    CLOSE_BAD_DATA,
    CLOSE_PROTOCOL,
    CLOSE_TOO_BIG,
    DEFLATE_TAIL,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RECV_SIZE,
    ProtocolError,
    close_code,
    frame,
    unmask,
)

# Messages the reader handles in a row before it lets other greenlets run.
MESSAGES_PER_TURN = 64
# Every data frame counts this much towards MAX_PAYLOAD_BYTES besides its
# payload (a masked frame's smallest header), and one message may have at
# most MAX_FRAGMENTS frames: a message of endless empty continuation frames
# would otherwise grow forever at no cost to its size check. Browsers send a
# message in one frame.
FRAME_COST = 6
MAX_FRAGMENTS = 1024


class FrameReader:
    """Reads messages for WebSocket, which supplies sock, green, max_message,
    deflate_wbits, the _rbuf/_unyielded/_turn slots, and write/flush/close."""
    __slots__ = ()

    def receive(self) -> Union[str, bytes, None]:
        """The next message, or None once the connection is over."""
        self._turn += 1
        if self._turn >= MESSAGES_PER_TURN:
            # A client sending many small messages must not starve the others.
            self._turn = self._unyielded = 0
            self.green.sleep(0)
        try:
            return self._receive()
        except ProtocolError as exc:
            self.close_reason = str(exc)
            self.close(exc.code)
            self.flush()
        except (EOFError, OSError):
            pass
        return None

    def _receive(self):
        parts, size, opcode, compressed = [], 0, None, False
        while True:
            fin, rsv1, op, payload = self._read_frame(size)
            if op >= OP_CLOSE:
                self._control(op, payload)
                continue
            if op == OP_CONT:
                if opcode is None or rsv1:
                    raise ProtocolError(CLOSE_PROTOCOL, 'unexpected '
                                        'continuation frame')
            elif opcode is not None:
                raise ProtocolError(CLOSE_PROTOCOL, 'new message inside a '
                                    'fragmented one')
            elif rsv1 and not self.deflate_wbits:
                raise ProtocolError(CLOSE_PROTOCOL, 'RSV1 without '
                                    'permessage-deflate')
            else:
                opcode, compressed = op, rsv1
            parts.append(payload)
            size += len(payload) + FRAME_COST
            if fin:
                break
            if len(parts) >= MAX_FRAGMENTS:
                raise ProtocolError(CLOSE_TOO_BIG, f'message in more than '
                                    f'{MAX_FRAGMENTS} fragments')
        data = parts[0] if len(parts) == 1 else b''.join(parts)
        if compressed:
            data = self._inflate(data)
        if opcode == OP_BINARY:
            return data
        try:
            return data.decode('utf-8')
        except UnicodeDecodeError:
            raise ProtocolError(CLOSE_BAD_DATA, 'text frame is not '
                                'UTF-8') from None

    def _control(self, opcode: int, payload: bytes):
        if opcode == OP_PING:
            self.write(frame(payload, OP_PONG))
        elif opcode == OP_CLOSE:
            code = close_code(payload)      # its code, echoed; or ProtocolError
            if not self.closing:
                self.close(code)
                self.flush()
            raise EOFError

    def _read_frame(self, size_so_far: int):
        b0, b1 = self._read(2)
        if b0 & 0x30 or (b0 & 0x40 and b0 & 0x0F >= OP_CLOSE):
            raise ProtocolError(CLOSE_PROTOCOL, 'reserved bits set')
        opcode = b0 & 0x0F
        if opcode not in (OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING,
                          OP_PONG):
            raise ProtocolError(CLOSE_PROTOCOL, f'unknown opcode {opcode}')
        if not b1 & 0x80:
            raise ProtocolError(CLOSE_PROTOCOL, 'client frame not masked')
        length = b1 & 0x7F
        if opcode >= OP_CLOSE and (length > 125 or not b0 & 0x80):
            raise ProtocolError(CLOSE_PROTOCOL, 'bad control frame')
        if length == 126:
            length = struct.unpack('!H', self._read(2))[0]
        elif length == 127:
            length = struct.unpack('!Q', self._read(8))[0]
        if opcode < OP_CLOSE and size_so_far + length > self.max_message:
            # Refused from the header, before a byte of it is buffered.
            raise ProtocolError(CLOSE_TOO_BIG, 'message larger than '
                                'MAX_PAYLOAD_BYTES')
        mask = self._read(4)
        payload = unmask(self._read(length), mask)
        return bool(b0 & 0x80), bool(b0 & 0x40), opcode, payload

    def _read(self, count: int) -> bytes:
        buf = self._rbuf
        while len(buf) < count:
            chunk = self.sock.recv(RECV_SIZE)
            if not chunk:
                raise EOFError
            buf += chunk
            self._unyielded += len(chunk)
            if self._unyielded >= RECV_SIZE:
                # A client streaming data must not starve the others.
                self._unyielded = self._turn = 0
                self.green.sleep(0)
        data = bytes(buf[:count])
        if len(buf) == count:
            self._rbuf = bytearray()  # let a large buffer go
        else:
            del buf[:count]
        return data

    def _inflate(self, data: bytes) -> bytes:
        # client_no_context_takeover was negotiated: each message on its own.
        inflater = zlib.decompressobj(-15)
        try:
            out = inflater.decompress(data + DEFLATE_TAIL, self.max_message + 1)
        except zlib.error:
            raise ProtocolError(CLOSE_BAD_DATA, 'bad deflate data') from None
        if len(out) > self.max_message or inflater.unconsumed_tail:
            raise ProtocolError(CLOSE_TOO_BIG, 'inflated message larger than '
                                'MAX_PAYLOAD_BYTES')
        return out
