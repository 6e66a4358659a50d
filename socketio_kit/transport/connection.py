"""One accepted WebSocket connection: a writer that never blocks the emitter
(see websocket.py for why), and the reader of wsread.py."""
import logging
import socket
import struct
from typing import List, Optional, Union

from socketio_kit.transport.greenio import Green
from socketio_kit.transport.websocket import (
    CLOSE_NORMAL,
    OP_BINARY,
    OP_CLOSE,
    OP_TEXT,
    frame,
)
from socketio_kit.transport.wsread import FrameReader

log = logging.getLogger('socketio_kit.transport.connection')
# Buffers one sendmsg() may take (Linux's IOV_MAX).
IOV_MAX = 1024


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


class WebSocket(FrameReader):
    """The server end of one WebSocket connection.

    `write()` only queues bytes; the Flusher sends them at the end of the hub
    iteration with a non-blocking send. Only when the client's socket is full
    does the connection get a writer greenlet, and once more than `max_buffer`
    bytes wait for a client, it is disconnected.
    """
    __slots__ = ('sock', 'raw', 'green', 'flusher', 'max_message', 'max_buffer',
                 'deflate_wbits', '_rbuf',
                 '_unyielded', '_turn',
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
        self._turn = 0       # messages read since then
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
            log.warning('disconnected a client that stopped reading: more '
                        'than MAX_CLIENT_BUFFER_BYTES=%d bytes waited for it',
                        self.max_buffer)
            self.abort('slow consumer: more than MAX_CLIENT_BUFFER_BYTES '
                       'waiting')
        elif len(out) == 1 and self._writer is None:
            self.flusher.mark(self)

    def flush(self):
        """Send what is queued without blocking (runs in the hub). The queued
        frames go out in one writev, never copied: a broadcast's bytes stay
        shared by every member, even by one that is behind."""
        if self.closed or self._writer is not None or not self._out:
            return
        out = self._out
        try:
            sent = self.raw.sendmsg(out[:IOV_MAX]) if len(out) > 1 else \
                self.raw.send(out[0])
        except BlockingIOError:
            sent = 0
        except OSError:
            self.abort('send failed')
            return
        self._sent(sent)
        if out:
            self._writer = self.green.spawn(self._write_blocked)
        elif self.closing:
            self._shutdown()

    def _sent(self, count: int):
        """Drop `count` sent bytes from the front of the queue; a frame sent
        in part stays as a view of the shared bytes, not a copy."""
        out, done = self._out, 0
        self._out_bytes -= count
        while count and done < len(out):
            size = len(out[done])
            if count < size:
                out[done] = memoryview(out[done])[count:]
                break
            count -= size
            done += 1
        del out[:done]

    def _write_blocked(self):
        """The writer greenlet of a client whose socket is full: one frame
        (or one writev's worth) at a time, waiting for the socket."""
        try:
            while self._out and not self.closed:
                batch = self._out[:IOV_MAX]
                self._inflight = sum(len(chunk) for chunk in batch)
                self._out_bytes -= self._inflight
                del self._out[:len(batch)]
                for chunk in batch:
                    self.sock.sendall(chunk)
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
