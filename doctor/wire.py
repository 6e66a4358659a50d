"""What the doctor sends and reads: raw HTTP and a minimal WebSocket client.

The doctor needs to see what a browser would see, so nothing here hides
anything: duplicate response headers are kept, redirects are not followed,
and a WebSocket handshake that does not answer 101 is returned with its
status, headers and the start of its body. Standard library only, so the
doctor runs anywhere Python 3.9+ does.
"""
import base64
import dataclasses
import http.client
import json
import os
import re
import socket
import ssl
import struct
import time
import urllib.parse
import zlib
from typing import Dict, List, Optional, Tuple

BODY_LIMIT = 64 * 1024
RECORD_SEPARATOR = '\x1e'  # between Engine.IO v4 packets in a polling payload


class WireError(OSError):
    """The request could not be made (refused, timed out, TLS error...)."""


@dataclasses.dataclass
class Response:
    status: int
    headers: List[Tuple[str, str]]
    body: bytes

    def values(self, name: str) -> List[str]:
        """Every value of a header, duplicates kept, in order."""
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def cookies(self) -> Optional[str]:
        """A Cookie header sending back every cookie this response set, as
        a browser would (a server may bind its session to one)."""
        pairs = [v.split(';', 1)[0].strip() for v in self.values('Set-Cookie')]
        return '; '.join(p for p in pairs if '=' in p) or None

    def first(self, name: str) -> Optional[str]:
        found = self.values(name)
        return found[0] if found else None

    @property
    def text(self) -> str:
        return self.body.decode('utf-8', errors='replace')

    def brief(self, limit: int = 80) -> str:
        """`400 "Invalid session"`: status and the gist of the body (an HTML
        page's title, a Python traceback's last line)."""
        text = ' '.join(self.text.split())
        title = re.search(r'<title>(.*?)</title>', text, re.I)
        if title:
            text = f'<html> {title.group(1).strip()}'
        elif text.startswith('Traceback'):
            last = [row for row in self.text.splitlines() if row.strip()][-1]
            text = f'Traceback ... {last.strip()}'
        if len(text) > limit:
            text = text[:limit] + '...'
        return f'{self.status} {text!r}' if text else str(self.status)


@dataclasses.dataclass(frozen=True)
class Target:
    """scheme://host:port of the URL under test, plus any path prefix."""
    scheme: str
    host: str
    port: int
    prefix: str

    @classmethod
    def parse(cls, url: str) -> 'Target':
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ('http', 'https', 'ws', 'wss') or not parts.hostname:
            raise ValueError(f'{url!r} is not an http(s):// URL')
        scheme = {'ws': 'http', 'wss': 'https'}.get(parts.scheme, parts.scheme)
        port = parts.port or (443 if scheme == 'https' else 80)
        return cls(scheme, parts.hostname, port, parts.path.rstrip('/'))

    @property
    def origin(self) -> str:
        default = 443 if self.scheme == 'https' else 80
        host = f'[{self.host}]' if ':' in self.host else self.host
        return f'{self.scheme}://{host}' + (
            '' if self.port == default else f':{self.port}')


def request(target: Target, method: str, path: str,
            headers: Optional[Dict[str, str]] = None, body: bytes = None,
            timeout: float = 5.0) -> Response:
    """One HTTP/1.1 request on a fresh connection."""
    cls = (http.client.HTTPSConnection if target.scheme == 'https'
           else http.client.HTTPConnection)
    conn = cls(target.host, target.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Response(resp.status, resp.getheaders(), resp.read(BODY_LIMIT))
    except (OSError, http.client.HTTPException) as exc:
        raise WireError(f'{type(exc).__name__}: {exc}' if str(exc)
                        else type(exc).__name__) from None
    finally:
        conn.close()


def eio_query(path: str, **args: str) -> str:
    return f'{path}/?' + urllib.parse.urlencode({'EIO': '4', **args})


def decode_payload(text: str) -> List[str]:
    """Engine.IO v4 polling payload -> packets ("0{...}", "40", "42[...]")."""
    return [p for p in text.split(RECORD_SEPARATOR) if p]


def open_packet(resp: Response) -> Optional[dict]:
    """The handshake's open packet, if resp is an Engine.IO v4 handshake."""
    if resp.status != 200:
        return None
    packets = decode_payload(resp.text)
    if not packets or not packets[0].startswith('0{'):
        return None
    try:
        data = json.loads(packets[0][1:])
    except ValueError:
        return None
    return data if isinstance(data, dict) and 'sid' in data else None


# -- WebSocket ------------------------------------------------------------------
def _masked(data: bytes, mask: bytes) -> bytes:
    """data XOR the repeated 4-byte mask (RFC 6455 5.3), as one big integer
    operation: a byte loop takes seconds on a multi-megabyte frame."""
    if not data:
        return data
    key = (mask * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, 'big') ^ int.from_bytes(key, 'big')).to_bytes(
        len(data), 'big')


def client_frame(payload: bytes, first: int = 0x81, mask: bytes = b'') -> bytes:
    """One masked client frame; `first` is its first byte (FIN, RSV, opcode).
    The mask is random unless given (a zero mask is cheap and still valid)."""
    mask = mask or os.urandom(4)
    length = len(payload)
    if length < 126:
        header = bytes([first, 0x80 | length])
    elif length < 65536:
        header = bytes([first, 0x80 | 126]) + struct.pack('!H', length)
    else:
        header = bytes([first, 0x80 | 127]) + struct.pack('!Q', length)
    masked = payload if mask == b'\0\0\0\0' else _masked(payload, mask)
    return header + mask + masked


class WebSocket:
    """Just enough RFC 6455 to talk Engine.IO: text frames, ping, close, and
    permessage-deflate frames from a server that negotiated it."""

    def __init__(self, sock: socket.socket, leftover: bytes):
        self.sock = sock
        self.buffer = leftover
        self.inflater = zlib.decompressobj(-15)

    def _read(self, count: int, deadline: float) -> bytes:
        while len(self.buffer) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout('timed out')
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError('connection closed by the other end')
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def send(self, text: str, opcode: int = 1, compress: bool = False):
        payload = text.encode()
        first = 0x80 | opcode
        if compress:  # only valid once the server accepted permessage-deflate
            deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
            payload = (deflater.compress(payload)
                       + deflater.flush(zlib.Z_SYNC_FLUSH))[:-4]
            first |= 0x40
        self.sock.sendall(client_frame(payload, first))

    def frame(self, timeout: float) -> Tuple[bool, int, bytes]:
        """The next frame: (compressed, opcode, payload inflated if need be)."""
        deadline = time.monotonic() + timeout
        first, second = self._read(2, deadline)
        opcode, length = first & 0x0F, second & 0x7F
        if length == 126:
            length = struct.unpack('!H', self._read(2, deadline))[0]
        elif length == 127:
            length = struct.unpack('!Q', self._read(8, deadline))[0]
        mask = self._read(4, deadline) if second & 0x80 else None
        data = self._read(length, deadline)
        if mask:
            data = _masked(data, mask)
        compressed = bool(first & 0x40)
        if compressed:
            data = self.inflater.decompress(data + b'\x00\x00\xff\xff')
        return compressed, opcode, data

    def message(self, timeout: float) -> Tuple[bool, str]:
        """The next text message and whether it came compressed; answers
        pings, raises ConnectionError on a close frame."""
        deadline = time.monotonic() + timeout
        while True:
            compressed, opcode, data = self.frame(deadline - time.monotonic())
            if opcode == 8:
                code = struct.unpack('!H', data[:2])[0] if len(data) >= 2 else None
                raise ConnectionError(f'close frame (code {code})')
            if opcode == 9:
                self.send(data.decode(errors='replace'), opcode=10)
                continue
            if opcode in (1, 2):
                return compressed, data.decode('utf-8', errors='replace')

    def recv(self, timeout: float) -> str:
        """The next text message; raises ConnectionError on a close frame."""
        return self.message(timeout)[1]

    def close(self):
        try:
            self.sock.sendall(bytes([0x88, 0x80]) + os.urandom(4))
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def websocket(target: Target, path: str, headers: Dict[str, str],
              timeout: float = 5.0) -> Tuple[Response, Optional[WebSocket]]:
    """Attempt a WebSocket handshake; (response, socket if it answered 101)."""
    key = base64.b64encode(os.urandom(16)).decode()
    host = target.host if ':' not in target.host else f'[{target.host}]'
    default = 443 if target.scheme == 'https' else 80
    lines = [f'GET {path} HTTP/1.1',
             f'Host: {host}' + ('' if target.port == default else f':{target.port}'),
             'Upgrade: websocket', 'Connection: Upgrade',
             f'Sec-WebSocket-Key: {key}', 'Sec-WebSocket-Version: 13']
    lines += [f'{k}: {v}' for k, v in headers.items()]
    try:
        sock = socket.create_connection((target.host, target.port), timeout)
        if target.scheme == 'https':
            sock = ssl.create_default_context().wrap_socket(
                sock, server_hostname=target.host)
        sock.sendall(('\r\n'.join(lines) + '\r\n\r\n').encode())
        data = b''
        deadline = time.monotonic() + timeout
        while b'\r\n\r\n' not in data:
            if time.monotonic() > deadline or len(data) > BODY_LIMIT:
                raise socket.timeout('no complete response head')
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError('connection closed before a response')
            data += chunk
    except (OSError, ConnectionError) as exc:
        raise WireError(f'{type(exc).__name__}: {exc}') from None
    head, _, rest = data.partition(b'\r\n\r\n')
    status_line, *header_lines = head.decode('latin-1').split('\r\n')
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError):
        sock.close()
        raise WireError(f'not an HTTP response: {status_line[:60]!r}') from None
    parsed = []
    for line in header_lines:
        name, _, value = line.partition(':')
        parsed.append((name.strip(), value.strip()))
    resp = Response(status, parsed, b'')
    if status == 101:
        return resp, WebSocket(sock, rest)
    # Read the (short) error body, bounded in size and time.
    length = resp.first('Content-Length')
    want = min(int(length), BODY_LIMIT) if length and length.isdigit() else 4096
    try:
        sock.settimeout(1.0)
        while len(rest) < want:
            chunk = sock.recv(4096)
            if not chunk:
                break
            rest += chunk
    except OSError:
        pass
    sock.close()
    resp.body = rest[:want]
    return resp, None
