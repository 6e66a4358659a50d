"""A loopback source of ready-made Socket.IO broadcast frames (the selftest).

`python -m loadtest.source PORT [--deflate] [--senders N] [--room R]`: accepts
WebSocket connections, speaks just enough Engine.IO/Socket.IO for the load
generator's client (open, connect, welcome, acks), then, on the stdin line
`go SECONDS`, writes pre-built `42["message",{...}]` frames to every
connection as fast as they drain, and prints one JSON line with what it sent.
Frames have the shape of the kit's broadcasts, so the generator's hot path is
the one it runs against a cluster. With --deflate it accepts
permessage-deflate with server_no_context_takeover and compresses each frame
once for every connection, as a server that encodes a broadcast once does.
"""
import argparse
import asyncio
import base64
import hashlib
import json
import socket
import struct
import sys
import time
import zlib

from loadtest.deflate import TAIL, deflate_message, negotiated

GUID = b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
# Frames per sender in one write: one broadcast round, as a server fans out.
BATCH_PER_SENDER = 1
HIGH_WATER = 64 * 1024      # bytes queued per connection before the source waits
KERNEL_SNDBUF = 64 * 1024


def frame(payload: bytes, rsv1: bool = False) -> bytes:
    """One unmasked server-to-client text frame."""
    head = 0xC1 if rsv1 else 0x81
    n = len(payload)
    if n < 126:
        return struct.pack('!BB', head, n) + payload
    if n < 65536:
        return struct.pack('!BBH', head, 126, n) + payload
    return struct.pack('!BBQ', head, 127, n) + payload


def read_frames(buf: bytearray):
    """Pop complete client frames (masked) from buf; yield (opcode, rsv1, payload)."""
    while len(buf) >= 2:
        opcode, rsv1, n, pos = buf[0] & 0x0F, bool(buf[0] & 0x40), buf[1] & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                return
            n, pos = struct.unpack('!H', buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                return
            n, pos = struct.unpack('!Q', buf[2:10])[0], 10
        if len(buf) < pos + 4 + n:
            return
        mask, data = buf[pos:pos + 4], buf[pos + 4:pos + 4 + n]
        del buf[:pos + 4 + n]
        yield opcode, rsv1, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


class Connection(asyncio.Protocol):
    def __init__(self, source: 'Source'):
        self.source, self.buf, self.upgraded = source, bytearray(), False
        self.transport = None
        self.drained = asyncio.get_running_loop().create_future()
        self.drained.set_result(None)

    def connection_made(self, transport):
        self.transport = transport
        transport.set_write_buffer_limits(high=HIGH_WATER)
        # A small kernel buffer keeps the source from running far ahead of
        # the reader, so the latencies it sees stay those of a live stream.
        transport.get_extra_info('socket').setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_SNDBUF)

    def pause_writing(self):
        self.drained = asyncio.get_running_loop().create_future()

    def resume_writing(self):
        if not self.drained.done():
            self.drained.set_result(None)

    def connection_lost(self, exc):
        self.source.conns.discard(self)
        self.resume_writing()

    def data_received(self, data):
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b'\r\n\r\n')
            if end < 0:
                return
            self.handshake(bytes(self.buf[:end]).decode('latin-1'))
            del self.buf[:end + 4]
        for opcode, rsv1, payload in read_frames(self.buf):
            if opcode == 0x8:
                self.transport.close()
            elif opcode == 0x1:
                # A client may compress what it sends (aiohttp does); every
                # message stands alone since we asked client_no_context_takeover.
                self.on_text((zlib.decompressobj(-15).decompress(payload + TAIL)
                              if rsv1 else payload).decode())

    def handshake(self, request: str):
        headers = {}
        for line in request.split('\r\n')[1:]:
            name, _, value = line.partition(':')
            headers[name.strip().lower()] = value.strip()
        accept = base64.b64encode(hashlib.sha1(
            headers['sec-websocket-key'].encode() + GUID).digest()).decode()
        reply = ('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n'
                 f'Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n')
        self.deflate = bool(self.source.deflate and negotiated(
            headers.get('sec-websocket-extensions')))
        if self.deflate:
            reply += ('Sec-WebSocket-Extensions: permessage-deflate; '
                      'server_no_context_takeover; client_no_context_takeover\r\n')
        self.transport.write((reply + '\r\n').encode())
        self.upgraded = True
        self.sid = f'source.{len(self.source.conns)}'
        self.send(f'0{{"sid":"{self.sid}","upgrades":[],"pingInterval":25000,'
                  f'"pingTimeout":20000,"maxPayload":1000000}}')

    def send(self, text: str):
        self.transport.write(frame(text.encode()))

    def on_text(self, text: str):
        if text == '40':
            self.send(f'40{{"sid":"{self.sid}"}}')
            self.send('42["welcome",' + json.dumps(
                {'instance': 'source', 'sid': self.sid, 'transport': 'websocket',
                 'session': None}, separators=(',', ':')) + ']')
        elif text.startswith('42') and text[2:3].isdigit():
            ack_id = text[2:text.index('[')]
            self.send(f'43{ack_id}[{{"ok":true,"instance":"source"}}]')
            if '"join"' in text:
                self.source.conns.add(self)


class Source:
    def __init__(self, deflate: bool, senders: int, room: str):
        self.deflate, self.senders, self.room = deflate, senders, room
        self.conns = set()

    def batch(self, seq0: int, compress: bool) -> bytes:
        """BATCH_PER_SENDER frames of every sender, sequence numbers from seq0."""
        now = time.time()
        out = []
        for q in range(seq0, seq0 + BATCH_PER_SENDER):
            for s in range(self.senders):
                text = (f'42["message",{{"room":"{self.room}","data":{{"s":"src.{s}",'
                        f'"q":{q},"t":{now:.6f}}},"from":"source"}}]').encode()
                out.append(frame(deflate_message(text), True) if compress else frame(text))
        return b''.join(out)

    async def blast(self, seconds: float) -> dict:
        conns = list(self.conns)
        plain = [c for c in conns if not c.deflate]
        packed = [c for c in conns if c.deflate]
        start = time.monotonic()
        seq = 0
        for _ in range(10_000_000):  # bounded; the clock ends it
            if time.monotonic() - start >= seconds or not self.conns:
                break
            for group, compress in ((plain, False), (packed, True)):
                if group:
                    data = self.batch(seq, compress)
                    for conn in group:
                        if not conn.transport.is_closing():
                            conn.transport.write(data)
            seq += BATCH_PER_SENDER
            await asyncio.gather(*(c.drained for c in conns))
        elapsed = time.monotonic() - start
        return {'sent': {f'src.{s}': seq for s in range(self.senders)},
                'connections': len(conns), 'compressed_connections': len(packed),
                'frames_written': seq * self.senders * len(conns),
                'seconds': round(elapsed, 3)}


async def serve(port: int, source: Source):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(source), '127.0.0.1', port)
    print('ready', flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    for _ in range(100):  # bounded number of commands
        line = (await reader.readline()).decode().split()
        if not line or line[0] == 'quit':
            break
        if line[0] == 'go':
            print(json.dumps(await source.blast(float(line[1]))), flush=True)
    server.close()


def main(argv=None):
    ap = argparse.ArgumentParser(prog='python -m loadtest.source', description=__doc__)
    ap.add_argument('port', type=int)
    ap.add_argument('--deflate', action='store_true')
    ap.add_argument('--senders', type=int, default=5)
    ap.add_argument('--room', default='loadtest')
    args = ap.parse_args(argv)
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(serve(args.port, Source(args.deflate, args.senders, args.room)))


if __name__ == '__main__':
    main()
