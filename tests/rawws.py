"""A raw WebSocket client for the data-plane tests: it shows what a library
client hides (the handshake's extension header, RSV1 on each frame, when the
server sends) and can stop reading on purpose."""
import base64
import os
import socket
import struct
import zlib
from typing import List, Optional, Tuple
from urllib.parse import urlsplit

BROWSER_OFFER = 'permessage-deflate; client_max_window_bits'


class RawWebSocket:
    """One client connection; `frames()` yields (rsv1, opcode, payload)."""

    def __init__(self, url: str, path: str = '/socket.io', *,
                 origin: Optional[str] = 'http://localhost:8081',
                 extensions: Optional[str] = BROWSER_OFFER,
                 rcvbuf: Optional[int] = None, timeout: float = 10.0):
        parts = urlsplit(url)
        self.sock = socket.socket()
        if rcvbuf:  # set before connect, so the window stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((parts.hostname, parts.port))
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f'GET {path}/?EIO=4&transport=websocket HTTP/1.1',
                 f'Host: {parts.netloc}', 'Upgrade: websocket',
                 'Connection: Upgrade', f'Sec-WebSocket-Key: {key}',
                 'Sec-WebSocket-Version: 13']
        if origin:
            lines.append(f'Origin: {origin}')
        if extensions:
            lines.append(f'Sec-WebSocket-Extensions: {extensions}')
        self.sock.sendall(('\r\n'.join(lines) + '\r\n\r\n').encode())
        head = b''
        while b'\r\n\r\n' not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError(f'closed during handshake: {head!r}')
            head += chunk
        head, self.buf = head.split(b'\r\n\r\n', 1)
        status, *header_lines = head.decode().split('\r\n')
        self.status = int(status.split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, v in
                        (h.split(':', 1) for h in header_lines)}
        ext = self.headers.get('sec-websocket-extensions', '')
        self.deflate = ext.startswith('permessage-deflate')
        self.inflater = zlib.decompressobj(-15)

    # -- frames ------------------------------------------------------------------
    def send(self, text: str, compress: bool = False):
        self.sock.sendall(self.encode(text, compress))

    def encode(self, text: str, compress: bool = False) -> bytes:
        payload = text.encode()
        b0 = 0x81
        if compress:
            comp = zlib.compressobj(6, zlib.DEFLATED, -15)
            payload = (comp.compress(payload) + comp.flush(zlib.Z_SYNC_FLUSH))[:-4]
            b0 |= 0x40
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            head = struct.pack('!BB', b0, 0x80 | size)
        elif size < 65536:
            head = struct.pack('!BBH', b0, 0x80 | 126, size)
        else:
            head = struct.pack('!BBQ', b0, 0x80 | 127, size)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return head + mask + masked

    def _need(self, count: int):
        while len(self.buf) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError('server closed the connection')
            self.buf += chunk

    def frame(self) -> Tuple[bool, int, bytes]:
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        size, offset = b1 & 0x7F, 2
        if size == 126:
            self._need(4)
            size, offset = struct.unpack('!H', self.buf[2:4])[0], 4
        elif size == 127:
            self._need(10)
            size, offset = struct.unpack('!Q', self.buf[2:10])[0], 10
        self._need(offset + size)
        payload, self.buf = self.buf[offset:offset + size], self.buf[offset + size:]
        rsv1 = bool(b0 & 0x40)
        if rsv1:
            payload = self.inflater.decompress(payload + b'\x00\x00\xff\xff')
        return rsv1, b0 & 0x0F, payload

    def text(self) -> Tuple[bool, str]:
        """The next text message (answering pings); (compressed, text)."""
        for _ in range(1000):
            rsv1, opcode, payload = self.frame()
            if opcode == 1:
                text = payload.decode()
                if text == '2':
                    self.send('3')
                    continue
                return rsv1, text
            if opcode == 8:
                raise EOFError('close frame')
        raise AssertionError('no text frame in 1000 frames')

    # -- Socket.IO -----------------------------------------------------------------
    def open_socketio(self) -> dict:
        """Engine.IO open, Socket.IO connect; returns the `welcome` payload."""
        import json
        _, opened = self.text()
        assert opened.startswith('0'), opened
        self.send('40')
        for _ in range(10):
            _, text = self.text()
            if text.startswith('42["welcome"'):
                return json.loads(text[2:])[1]
        raise AssertionError('no welcome')

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def offered(url: str, extensions: Optional[str] = BROWSER_OFFER) -> List[str]:
    """The Sec-WebSocket-Extensions the server answers an offer with."""
    ws = RawWebSocket(url, extensions=extensions)
    try:
        assert ws.status == 101, ws.status
        value = ws.headers.get('sec-websocket-extensions')
        return [value] if value else []
    finally:
        ws.close()
