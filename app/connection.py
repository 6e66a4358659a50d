"""One accepted WebSocket connection: a reader for its greenlet, a writer that
never blocks the emitter (see app/websocket.py for why)."""
import socket
import struct
import zlib
from typing import List, Optional, Union

from app.greenio import Green
from app.websocket import (
    CLOSE_BAD_DATA,
    CLOSE_NORMAL,
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
    frame,
    unmask,
)


class Flusher:
    """Sends, once per hub iteration, what each client was given during it.

    Frames written to a client during one iteration (a burst of broadcasts
    read from Redis in one go, say) leave in one send() instead of one each.
    """

    def __init__(self, green: Green):
        self.green = green
        self.dirty: List[WebSocket] = []

    def mark(self, ws: 'WebSocket'):
        if not self.dirty:
            self.green.call_soon(self.run)
        self.dirty.append(ws)

    def run(self):
        dirty, self.dirty = self.dirty, []
        for ws in dirty:
            ws.flush()


class WebSocket:
    """The server end of one WebSocket connection.

    `write()` only queues bytes; the Flusher sends them at the end of the hub
    iteration with a non-blocking send. Only when the client's socket is full
    does the connection get a writer greenlet, and once more than `max_buffer`
    bytes wait for a client, it is disconnected.
    """
    __slots__ = ('sock', 'raw', 'green', 'flusher', 'max_message', 'max_buffer',
                 'deflate_wbits', '_rbuf',
                 '_unyielded',
                 '_out', '_out_bytes', '_inflight', '_writer', 'closed',
                 'closing', 'close_reason')

    def __init__(self, sock, green: Green, flusher: Flusher, *,
                 max_message: int, max_buffer: int, deflate=None):
        self.sock, self.green, self.flusher = sock, green, flusher
        self.raw = green.raw_socket(sock)
        self.max_message, self.max_buffer = max_message, max_buffer
        self.deflate_wbits = deflate[1] if deflate else 0
        self._rbuf = bytearray()
        self._unyielded = 0  # bytes read since the reader last yielded
        self._out: List[bytes] = []
        self._out_bytes = 0
        self._inflight = 0
        self._writer = None
        self.closed = False      # no byte may be sent any more
        self.closing = False     # a close frame is queued; shut down once sent
        self.close_reason: Optional[str] = None

    # -- writing ---------------------------------------------------------------
    def send(self, data: Union[str, bytes]):
        """Frame and queue one message (str: text, bytes: binary)."""
        if isinstance(data, str):
            self.write(frame(data.encode(), OP_TEXT))
        else:
            self.write(frame(bytes(data), OP_BINARY))

    def write(self, data: bytes):
        """Queue ready-made frame bytes; a broadcast passes the same object to
        every member."""
        if self.closed or self.closing:  # nothing may follow a close frame
            return
        out = self._out
        out.append(data)
        self._out_bytes += len(data)
        if self._out_bytes + self._inflight > self.max_buffer and (
                len(out) > 1 or self._inflight):
            self.abort('slow consumer: more than MAX_CLIENT_BUFFER_BYTES '
                       'waiting')
        elif len(out) == 1 and self._writer is None:
            self.flusher.mark(self)

    def flush(self):
        """Send what is queued without blocking (runs in the hub)."""
        if self.closed or self._writer is not None or not self._out:
            return
        out = self._out
        data = out[0] if len(out) == 1 else b''.join(out)
        try:
            sent = self.raw.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.abort('send failed')
            return
        if sent == len(data):
            out.clear()
            self._out_bytes = 0
            if self.closing:
                self._shutdown()
            return
        out[:] = [data[sent:]]
        self._out_bytes = len(data) - sent
        self._writer = self.green.spawn(self._write_blocked)

    def _write_blocked(self):
        """The writer greenlet of a client whose socket is full."""
        try:
            while self._out and not self.closed:
                data = b''.join(self._out)
                self._out.clear()
                self._out_bytes, self._inflight = 0, len(data)
                self.sock.sendall(data)
                self._inflight = 0
        except OSError:
            self.abort('send failed')
        finally:
            self._writer = None
            self._inflight = 0
        if self.closing and not self.closed:
            self._shutdown()

    def close(self, code: int = CLOSE_NORMAL):
        """Send a close frame, then shut the connection down; a client that
        is not reading (its writer is blocked) is dropped at once instead."""
        if self.closed or self.closing:
            return
        if self._writer is not None:
            self.abort('closed while the client was not reading')
            return
        self.write(frame(struct.pack('!H', code), OP_CLOSE))
        self.closing = True

    def abort(self, reason: str):
        """Drop the connection now: queued bytes are discarded."""
        if self.closed:
            return
        self.close_reason = self.close_reason or reason
        self._out.clear()
        self._out_bytes = 0
        self._shutdown()

    def _shutdown(self):
        self.closed = True
        try:  # wakes the reader (recv returns b'') and a blocked writer
            self.raw.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def finish(self):
        """Called by the reader's greenlet before the socket is closed."""
        self.closed = True
        self._out.clear()
        if self._writer is not None:
            self.green.kill(self._writer)
            self._writer = None

    # -- reading ---------------------------------------------------------------
    def receive(self) -> Union[str, bytes, None]:
        """The next message, or None once the connection is over."""
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
            size += len(payload)
            if fin:
                break
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
            if not self.closing:
                self.close(CLOSE_NORMAL)
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
                self._unyielded = 0
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
