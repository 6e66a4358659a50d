"""Receive ceiling of two asyncio WebSocket clients, to choose the generator's.

`python bench/ws_clients.py [--clients N] [--seconds S] [--deflate]` starts
loadtest.source on a free loopback port, connects N bare clients with aiohttp
and then with picows (each under asyncio and under uvloop), has the source
write ready-made broadcast frames as fast as they drain, and prints frames/s
received and the receiving process's CPU (fraction of one core). The clients
only count frames that start like a broadcast: this is the library's cost,
not the load generator's bookkeeping. Results: bench/NOTES.md.
"""
import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from loadtest.deflate import OFFER, Inflater, negotiated  # noqa: E402

PREFIX = b'42["message"'
JOIN = '421["join",{"room":"loadtest"}]'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


async def aiohttp_clients(url, n, headers, counter):
    import aiohttp
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    conns = []
    for _ in range(n):
        ws = await session.ws_connect(url, headers=headers, autoping=False,
                                      max_msg_size=0, compress=15 if headers else 0)
        await ws.receive()
        await ws.send_str('40')
        await ws.send_str(JOIN)
        conns.append(ws)

    async def read(ws):
        async for msg in ws:
            if msg.data.startswith('42["message"'):
                counter[0] += 1
    tasks = [asyncio.create_task(read(ws)) for ws in conns]
    return session, tasks


async def picows_clients(url, n, headers, counter):
    from picows import WSListener, WSMsgType, ws_connect

    class Listener(WSListener):
        inflate = None

        def on_ws_frame(self, transport, frame):
            if frame.msg_type == WSMsgType.TEXT:
                data = frame.get_payload_as_bytes()
                if frame.rsv1:
                    data = self.inflate(data)
                if data.startswith(PREFIX):
                    counter[0] += 1
    conns = []
    for _ in range(n):
        transport, listener = await ws_connect(Listener, url, extra_headers=headers,
                                               use_aiofastnet=False)
        agreed = negotiated(transport.response.headers.get('Sec-WebSocket-Extensions'))
        listener.inflate = Inflater(agreed) if agreed else None
        transport.send(WSMsgType.TEXT, b'40')
        transport.send(WSMsgType.TEXT, JOIN.encode())
        conns.append(transport)
    return conns, []


async def measure(kind, port, n, seconds, deflate, source):
    url = f'ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket'
    headers = {'Sec-WebSocket-Extensions': OFFER} if deflate and kind == 'picows' else {}
    if deflate and kind == 'aiohttp':
        headers = {'x': 'y'}  # aiohttp makes its own offer with compress=15
    counter = [0]
    make = aiohttp_clients if kind == 'aiohttp' else picows_clients
    handle, tasks = await make(url, n, headers, counter)
    await asyncio.sleep(0.5)
    cpu0, wall0, got0 = time.process_time(), time.monotonic(), counter[0]
    source.stdin.write(f'go {seconds}\n'.encode())
    source.stdin.flush()
    line = await asyncio.get_running_loop().run_in_executor(None, source.stdout.readline)
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    got = counter[0] - got0
    for t in tasks:
        t.cancel()
    if kind == 'aiohttp':
        await handle.close()
    else:
        for tr in handle:
            tr.disconnect()
    sent = json.loads(line)
    return {'frames_per_s': round(got / wall), 'cpu': round(cpu / wall, 2),
            'compressed': sent['compressed_connections']}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--clients', type=int, default=300)
    ap.add_argument('--seconds', type=float, default=5)
    ap.add_argument('--deflate', action='store_true')
    args = ap.parse_args()
    for kind in ('aiohttp', 'picows'):
        for loop in ('asyncio', 'uvloop'):
            port = free_port()
            source = subprocess.Popen(
                [sys.executable, '-m', 'loadtest.source', str(port),
                 *(['--deflate'] if args.deflate else [])],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
            try:
                assert source.stdout.readline().strip() == b'ready'
                coro = measure(kind, port, args.clients, args.seconds, args.deflate, source)
                if loop == 'uvloop':
                    import uvloop
                    out = uvloop.run(coro)
                else:
                    out = asyncio.run(coro)
                print(f'{kind:8} {loop:8} clients={args.clients} deflate={args.deflate}: '
                      f'{out["frames_per_s"]:>9,} frames/s received, CPU {out["cpu"]:.0%} '
                      f'of a core, {out["compressed"]} compressed connections', flush=True)
            finally:
                source.stdin.close()
                source.wait(10)


if __name__ == '__main__':
    main()
