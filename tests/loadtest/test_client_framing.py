"""The client's framing against a real python-socketio server (no mocks).

Each test talks to tests/loadtest/echo_server.py (the `server` fixtures of
conftest.py), a plain python-socketio eventlet server on a free loopback port
that pings every second.
"""
import asyncio
import json

import aiohttp
import pytest

from loadtest.cli import EXIT_TRANSPORT, main
from loadtest.client import Client, ClientConfig, ConnectError, Handler
from loadtest.config import Config
from loadtest.control import Controller


class Recorder(Handler):
    def __init__(self):
        self.welcomes, self.messages, self.disconnects = [], [], []

    def on_welcome(self, client, data):
        self.welcomes.append(data)

    def on_broadcast(self, client, packet):
        self.messages.append(json.loads(packet[2:])[1])

    def on_disconnect(self, client, reason):
        self.disconnects.append(reason)


def _config(url, offer_deflate=True, reconnect=False, **cfg) -> ClientConfig:
    """A client's config: the load test's defaults, then the test's choices."""
    return ClientConfig.of(Config(url=url, connect_timeout=5, **cfg),
                           offer_deflate=offer_deflate, reconnect=reconnect)


def run(coro_fn, url, **cfg):
    """Run coro_fn(client, recorder, session) with one client."""
    async def go():
        rec = Recorder()
        async with aiohttp.ClientSession() as session:
            client = Client(_config(url, **cfg), rec, session)
            try:
                return await coro_fn(client, rec, session)
            finally:
                await client.close()
    return asyncio.run(asyncio.wait_for(go(), 30))


@pytest.mark.parametrize('transport', ['websocket', 'polling', 'upgrade'])
def test_open_connect_welcome_and_ack(server, transport):
    async def body(client, rec, _):
        await client.connect()
        who = await client.call('whoami')
        # The server's connect reply ("40{sid}") may come after `welcome`.
        assert rec.welcomes[0]['sid'] == client.sid == who['sid']
        return client.transport, who
    got, who = run(body, server, transport=transport)
    expected = 'polling' if transport == 'polling' else 'websocket'
    assert got == expected
    assert who['transport'] == expected  # the server agrees


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_server_pings_and_client_pongs(server, transport):
    # ping_interval=1 s, ping_timeout=1 s: without pongs the server would drop
    # the client after about 2 s.
    async def body(client, rec, _):
        await client.connect()
        await asyncio.sleep(3.5)
        return client.connected, rec.disconnects, await client.call('whoami')
    connected, disconnects, who = run(body, server, transport=transport)
    assert connected and not disconnects and who['instance'] == 'echo'


def test_event_and_broadcast_roundtrip(server):
    async def body(client, rec, _):
        await client.connect()
        assert (await client.call('join', {'room': 'r'}))['ok']
        ack = await client.call('broadcast', {'room': 'r', 'data': {'s': 'a', 'q': 0, 't': 1.5}})
        for _ in range(50):
            if rec.messages:
                break
            await asyncio.sleep(0.05)
        return ack, rec.messages
    ack, messages = run(body, server)
    assert ack['ok'] is True
    assert messages == [{'room': 'r', 'data': {'s': 'a', 'q': 0, 't': 1.5}, 'from': 'echo'}]


def test_ack_with_several_args_keeps_the_first(server):
    async def body(client, rec, _):
        await client.connect()
        return await client.call('echo_ack', {'x': ['é', 1, None]})
    assert run(body, server) == {'x': ['é', 1, None]}


def test_wrong_origin_is_refused_not_hidden(server):
    async def body(client, rec, _):
        with pytest.raises(ConnectError, match='HTTP 400'):
            await client.connect()
        return client.connected
    assert run(body, server, origin='http://evil.example') is False


def test_server_disconnect_then_reconnect(server):
    async def body(client, rec, _):
        await client.connect()
        await client.emit('kick')
        for _ in range(100):
            if len(rec.welcomes) >= 2 and client.connected:
                break
            await asyncio.sleep(0.05)
        return rec.disconnects, len(rec.welcomes), client.connected
    disconnects, welcomes, connected = run(body, server, reconnect=True,
                                           reconnect_delay=0.1)
    assert disconnects == ['server disconnect'] and welcomes == 2 and connected


def test_upgrade_refused_stays_on_polling_and_says_so(polling_only_server):
    async def body(client, rec, _):
        await client.connect()
        return client.transport, client.upgrade_error
    transport, error = run(body, polling_only_server, transport='upgrade')
    assert transport == 'polling' and error


def test_cli_fails_loudly_on_transport_mismatch(polling_only_server, tmp_path):
    code = main(['broadcast', '--url', polling_only_server, '--transport',
                 'upgrade', '-c', '3', '-d', '1', '--drain', '0.5', '-q',
                 '--no-plots', '--out', str(tmp_path / 'r.json')], Controller())
    assert code == EXIT_TRANSPORT
    result = json.loads((tmp_path / 'r.json').read_text())
    assert result['valid'] is False and result['transport']['got'] == {'polling': 3}
    assert 'TRANSPORT MISMATCH' in result['problems'][0]


def _handshake_headers(**cfg) -> dict:
    """The headers of the client's WebSocket upgrade request, as a bare TCP
    server receives them (it then refuses the upgrade)."""
    async def go():
        seen = {}

        async def serve(reader, writer):
            head = await reader.readuntil(b'\r\n\r\n')
            for line in head.decode().split('\r\n')[1:]:
                if ':' in line:
                    name, value = line.split(':', 1)
                    seen[name.strip().lower()] = value.strip()
            writer.write(b'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n')
            await writer.drain()
            writer.close()
        server = await asyncio.start_server(serve, '127.0.0.1', 0)
        port = server.sockets[0].getsockname()[1]
        client = Client(_config(f'http://127.0.0.1:{port}', **cfg), Handler())
        with pytest.raises(ConnectError, match='HTTP 400'):
            await client.connect()
        server.close()
        return seen
    return asyncio.run(asyncio.wait_for(go(), 20))


def test_offers_permessage_deflate_like_chrome_by_default():
    headers = _handshake_headers()
    assert headers['sec-websocket-extensions'] == \
        'permessage-deflate; client_max_window_bits'
    assert headers['origin'] == 'http://localhost:8081'


def test_compression_off_offers_nothing():
    assert 'sec-websocket-extensions' not in _handshake_headers(offer_deflate=False)


@pytest.mark.parametrize('offer', [True, False])
def test_compressed_frames_from_python_socketio_are_decoded(server, offer):
    # python-engineio under eventlet accepts the offer and compresses every
    # frame with context takeover: broadcasts after the first only decode
    # with the connection's persistent decompressor.
    async def body(client, rec, _):
        await client.connect()
        assert (await client.call('join', {'room': 'z'}))['ok']
        for q in range(5):
            await client.call('broadcast', {'room': 'z', 'data': {'s': 'a', 'q': q, 't': 1.0}})
        for _ in range(50):
            if len(rec.messages) == 5:
                break
            await asyncio.sleep(0.05)
        return client.compressed, rec.messages, client.protocol_errors
    compressed, messages, errors = run(body, server, offer_deflate=offer)
    assert compressed is offer and errors == 0
    assert [m['data']['q'] for m in messages] == list(range(5))


@pytest.mark.parametrize('compression', ['on', 'off'])
def test_selftest_short_run_prints_a_ceiling(tmp_path, capsys, compression):
    # Behaviour only: a ceiling is measured and printed, and every frame the
    # source wrote arrived once and in order. Speed is for the benchmark.
    code = main(['selftest', '-c', '4', '-d', '1', '--drain', '1', '--min-rate', '0',
                 '--compression', compression, '-q', '--no-plots',
                 '--out', str(tmp_path / 'self.json')])
    assert code == 0
    assert 'selftest ceiling' in capsys.readouterr().out
    result = json.loads((tmp_path / 'self.json').read_text())
    assert result['selftest']['messages_per_second'] > 0
    assert 0 < result['selftest']['cpu_fraction'] <= 1.5
    assert result['compression']['negotiated'] == (4 if compression == 'on' else 0)
    d = result['delivery']
    assert d['delivery_ratio'] == 1.0 and d['duplicates'] == 0 and d['out_of_order'] == 0
