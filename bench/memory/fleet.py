"""N idle raw WebSocket Socket.IO clients on one asyncio loop."""
import asyncio
import base64
import collections
import os
import struct
import time

from bench.memory.instance import ORIGIN, WARMUP_CLIENTS


def _client_frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack('!BB', 0x81, 0x80 | len(payload)) + mask + masked


async def _read_frame(reader) -> str:
    b0, b1 = await reader.readexactly(2)
    size = b1 & 0x7F
    if size == 126:
        size = struct.unpack('!H', await reader.readexactly(2))[0]
    elif size == 127:
        size = struct.unpack('!Q', await reader.readexactly(8))[0]
    payload = await reader.readexactly(size)
    if b0 & 0x0F == 8:
        raise EOFError('server closed')
    return payload.decode(errors='replace')


class Fleet:
    """N idle Socket.IO clients on raw WebSockets."""

    def __init__(self, port: int):
        self.port = port
        self.welcomed = 0
        self.failed = 0
        self.errors = collections.Counter()
        self.writers = []
        self.tasks = []
        self.stop = asyncio.Event()

    async def _client(self, gate: asyncio.Semaphore, timeout: float):
        writer = None
        try:
            async with gate:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection('127.0.0.1', self.port), timeout)
                self.writers.append(writer)
                key = base64.b64encode(os.urandom(16)).decode()
                writer.write((
                    'GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n'
                    f'Host: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n'
                    'Connection: Upgrade\r\n'
                    f'Sec-WebSocket-Key: {key}\r\n'
                    f'Sec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n\r\n'
                ).encode())
                head = await asyncio.wait_for(
                    reader.readuntil(b'\r\n\r\n'), timeout)
                if b' 101 ' not in head.split(b'\r\n', 1)[0]:
                    raise ConnectionError(head.split(b'\r\n', 1)[0].decode())
                opened = await asyncio.wait_for(_read_frame(reader), timeout)
                if not opened.startswith('0{'):
                    raise ConnectionError(f'no open packet: {opened[:40]}')
                writer.write(_client_frame('40'))
                while True:
                    msg = await asyncio.wait_for(_read_frame(reader), timeout)
                    if msg == '2':
                        writer.write(_client_frame('3'))
                    elif msg.startswith('42["welcome"'):
                        break
            self.welcomed += 1
            while not self.stop.is_set():  # idle: answer pings only
                msg = await _read_frame(reader)
                if msg == '2':
                    writer.write(_client_frame('3'))
        except (OSError, EOFError, asyncio.IncompleteReadError,
                asyncio.TimeoutError, ConnectionError) as exc:
            if not self.stop.is_set():
                self.failed += 1
                self.errors[type(exc).__name__ + ': ' + str(exc)[:60]] += 1

    async def open(self, count: int, concurrency: int, deadline: float,
                   timeout: float = 30.0):
        """Connect count more clients; return once all are welcomed (or the
        deadline passes, or some failed)."""
        gate = asyncio.Semaphore(concurrency)
        target = self.welcomed + count
        failed0 = self.failed
        for _ in range(count):
            self.tasks.append(asyncio.ensure_future(self._client(gate, timeout)))
        end = time.monotonic() + deadline
        while self.welcomed + (self.failed - failed0) < target and \
                time.monotonic() < end:
            await asyncio.sleep(0.1)
        if self.welcomed < target:
            raise RuntimeError(f'only {self.welcomed}/{target} welcomed; '
                               f'errors: {dict(self.errors.most_common(5))}')

    async def close(self):
        self.stop.set()
        for w in self.writers:
            w.transport.abort()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.writers.clear()
        self.tasks.clear()


async def warm_up(port: int, concurrency: int):
    """A few clients come and go first, so that one-time costs (the ping
    loop, lazy imports, first-use caches) are in the baseline."""
    fleet = Fleet(port)
    await fleet.open(WARMUP_CLIENTS, concurrency, 60)
    await fleet.close()
    await asyncio.sleep(1.0)


# -- runs ---------------------------------------------------------------------
