"""A Socket.IO client on a bare blocking socket that can stop reading.

The slow-consumer scenario needs a room member that joins like a browser and
then never reads again, so the server's writes to it back up. An asyncio
client always reads; this one reads only while joining, with a small receive
buffer, and afterwards only looks at its socket (bytes waiting, TCP state).
"""
import base64
import os
import socket
import struct
import time
from typing import Optional
from urllib.parse import urlsplit

from loadtest import protocol as p
from loadtest.deflate import OFFER, Inflater, negotiated

TCP_STATES = {1: 'ESTABLISHED', 7: 'CLOSE', 8: 'CLOSE_WAIT'}
FIONREAD = 0x541B


class RawClient:
    def __init__(self, url: str, path: str, origin: Optional[str], offer_deflate: bool,
                 rcvbuf: int = 4096):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.path, self.origin, self.offer = path, origin, offer_deflate
        self.rcvbuf = rcvbuf
        self.sock: Optional[socket.socket] = None
        self.buf = b''
        self.inflate = None
        self.instance: Optional[str] = None

    def join(self, room: str, timeout: float = 10.0):
        """Connect, upgrade, Socket.IO connect, join `room`; then stop reading."""
        deadline = time.monotonic() + timeout
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.settimeout(timeout)
        sock.connect((self.host, self.port))
        self.sock = sock
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f'GET {self.path}/?EIO=4&transport=websocket HTTP/1.1',
                 f'Host: {self.host}:{self.port}', 'Upgrade: websocket',
                 'Connection: Upgrade', f'Sec-WebSocket-Key: {key}',
                 'Sec-WebSocket-Version: 13']
        if self.origin:
            lines.append(f'Origin: {self.origin}')
        if self.offer:
            lines.append(f'Sec-WebSocket-Extensions: {OFFER}')
        sock.sendall(('\r\n'.join(lines) + '\r\n\r\n').encode())
        head = self._read_until(b'\r\n\r\n', deadline).decode('latin-1')
        if ' 101 ' not in head.split('\r\n')[0]:
            raise ConnectionError(f'upgrade refused: {head.splitlines()[0]}')
        for line in head.split('\r\n'):
            if line.lower().startswith('sec-websocket-extensions:'):
                agreed = negotiated(line.split(':', 1)[1])
                self.inflate = Inflater(agreed) if agreed else None
        self._wait_for(lambda t: t.startswith(p.EIO_OPEN), deadline)
        self._send(p.encode_connect())
        welcome = self._wait_for(lambda t: t.startswith('42["welcome"'), deadline)
        self.instance = p.decode_sio(welcome[1:]).data[1].get('instance')
        self._send(p.encode_event('join', {'room': room}, 1))
        self._wait_for(lambda t: t.startswith('431'), deadline)

    def snapshot(self) -> dict:
        """What the socket looks like now, without reading it."""
        import fcntl
        try:
            info = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
            state = TCP_STATES.get(info[0], str(info[0]))
            waiting = struct.unpack('i', fcntl.ioctl(self.sock, FIONREAD, b'\0' * 4))[0]
        except OSError as exc:
            return {'state': f'error: {exc}', 'unread_bytes': None}
        return {'state': state, 'unread_bytes': waiting}

    def drain(self, seconds: float) -> dict:
        """Read everything now; did the server end the connection?"""
        self.sock.settimeout(0.5)
        got, end = 0, 'still open'
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                break
            except OSError as exc:
                end = f'reset ({type(exc).__name__})'
                break
            if not data:
                end = 'closed by the server'
                break
            got += len(data)
        return {'read_after_stall_bytes': got, 'ended': end}

    def close(self):
        if self.sock is not None:
            self.sock.close()

    # -- framing ------------------------------------------------------------------
    def _send(self, text: str):
        data, mask = text.encode(), os.urandom(4)
        n = len(data)
        head = struct.pack('!BB', 0x81, 0x80 | n) if n < 126 else \
            struct.pack('!BBH', 0x81, 0x80 | 126, n)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _read_until(self, mark: bytes, deadline: float) -> bytes:
        for _ in range(10_000):
            i = self.buf.find(mark)
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + len(mark):]
                return out
            if time.monotonic() > deadline:
                break
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError('closed during the handshake')
            self.buf += chunk
        raise TimeoutError('no answer')

    def _frame(self, deadline: float) -> str:
        for _ in range(10_000):
            if len(self.buf) >= 2:
                rsv1, n, pos = self.buf[0] & 0x40, self.buf[1] & 0x7F, 2
                if n == 126:
                    n, pos = struct.unpack('!H', self.buf[2:4])[0], 4
                elif n == 127:
                    n, pos = struct.unpack('!Q', self.buf[2:10])[0], 10
                if len(self.buf) >= pos + n:
                    data, self.buf = self.buf[pos:pos + n], self.buf[pos + n:]
                    return (self.inflate(data) if rsv1 else data).decode()
            if time.monotonic() > deadline:
                raise TimeoutError('no frame')
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError('closed while joining')
            self.buf += chunk
        raise TimeoutError('no frame')

    def _wait_for(self, wanted, deadline: float) -> str:
        for _ in range(1000):
            text = self._frame(deadline)
            if text.startswith(p.EIO_PING):
                self._send(p.EIO_PONG + text[1:])
            elif wanted(text):
                return text
        raise TimeoutError('expected packet never came')
