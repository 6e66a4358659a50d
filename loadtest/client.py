"""A small, fast asyncio Socket.IO client built on aiohttp.

It speaks Engine.IO v4 / Socket.IO v5 itself (see protocol.py) so that one
process can hold thousands of connections. Transports:
- `websocket`: connect straight to `transport=websocket`, as a tuned client does;
- `polling`: HTTP long-polling only;
- `upgrade`: long-polling first, then the WebSocket upgrade, as browsers do. If
  the upgrade fails the client stays on polling, and `transport` says so.
The server pings and this client answers pong. Nothing falls back silently:
`transport` is what the connection really uses.
"""
import asyncio
import json
import random
import time
from dataclasses import dataclass
from typing import Any, Dict, Optional

import aiohttp

from loadtest import protocol as p

MESSAGE_PREFIX = '42["message",'
TRANSPORTS = ('websocket', 'polling', 'upgrade')


class ConnectError(RuntimeError):
    """One connection attempt failed; the message says how (HTTP status...)."""


@dataclass(frozen=True)
class ClientConfig:
    url: str = 'http://127.0.0.1:8080'
    path: str = '/socket.io'
    origin: Optional[str] = 'http://localhost:8081'
    transport: str = 'websocket'
    connect_timeout: float = 10.0
    reconnect: bool = False
    reconnect_delay: float = 0.5
    reconnect_delay_max: float = 2.0
    reconnect_attempts: int = 60

    def endpoint(self, transport: str, sid: Optional[str] = None) -> str:
        url = (f'{self.url.rstrip("/")}{self.path}/?EIO=4&transport='
               f'{transport}')
        return f'{url}&sid={sid}' if sid else url

    @property
    def headers(self) -> Dict[str, str]:
        return {'Origin': self.origin} if self.origin else {}


class Handler:
    """What a scenario hears from its clients. All callbacks are synchronous
    and must be quick: they run on the connection's reader task."""

    def on_welcome(self, client: 'Client', data: dict):
        pass

    def on_message(self, client: 'Client', data: dict):
        pass

    def on_disconnect(self, client: 'Client', reason: str):
        pass

    def on_reconnect_failed(self, client: 'Client', error: str):
        pass


class Client:
    """One Socket.IO client connection to the default namespace."""

    def __init__(self, session: aiohttp.ClientSession, config: ClientConfig,
                 handler: Handler, index: int = 0):
        self.session, self.config, self.handler = session, config, handler
        self.index = index
        self.connected = False
        self.instance: Optional[str] = None
        self.sid: Optional[str] = None
        self.transport: Optional[str] = None       # what is really in use
        self.welcome_transport: Optional[str] = None  # what the server saw
        self.upgrade_error: Optional[str] = None
        self.protocol_errors = 0
        self.connects = 0
        self._ws: Optional[aiohttp.ClientWebSocketResponse] = None
        self._eio_sid: Optional[str] = None
        self._acks: Dict[int, asyncio.Future] = {}
        self._next_ack = 0
        self._welcome: Optional[asyncio.Future] = None
        self._probe: Optional[asyncio.Future] = None
        self._tasks = set()
        self._post_lock = asyncio.Lock()
        self._closing = False
        self._generation = 0  # bumps on every connect; stale readers stop

    # -- public API ----------------------------------------------------------
    async def connect(self):
        """One connection attempt; returns once `welcome` arrived."""
        self._generation += 1
        self._welcome = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                if self.config.transport == 'websocket':
                    await self._connect_websocket()
                else:
                    await self._connect_polling()
                await self._welcome
        except TimeoutError:
            await self._abort()
            raise ConnectError('timeout') from None
        except ConnectError:
            await self._abort()
            raise
        except (aiohttp.ClientError, OSError, p.ProtocolError) as exc:
            await self._abort()
            raise ConnectError(_error_name(exc)) from None
        self.connects += 1
        if self.config.transport == 'upgrade':
            await self._upgrade()

    async def emit(self, event: str, data: Any = None):
        await self._send(p.encode_event(event, data))

    async def call(self, event: str, data: Any = None, timeout: float = 10.0):
        """Emit with an ack id and wait for the server's ack (its first arg)."""
        self._next_ack += 1
        ack_id = self._next_ack
        fut = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = fut
        try:
            await self._send(p.encode_event(event, data, ack_id))
            async with asyncio.timeout(timeout):
                return await fut
        finally:
            self._acks.pop(ack_id, None)

    async def close(self):
        self._closing = True
        if self.connected and self.transport == 'polling':
            try:
                await self._send(p.EIO_CLOSE)
            except Exception:
                pass
        await self._abort()
        for task in list(self._tasks):
            task.cancel()

    # -- WebSocket -------------------------------------------------------------
    async def _connect_websocket(self):
        try:
            ws = await self.session.ws_connect(
                self.config.endpoint('websocket'), headers=self.config.headers,
                autoping=False, autoclose=True, heartbeat=None,
                max_msg_size=0, compress=0)
        except aiohttp.WSServerHandshakeError as exc:
            raise ConnectError(f'HTTP {exc.status}') from None
        self._ws = ws
        msg = await ws.receive()
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise ConnectError(f'no open packet ({msg.type.name})')
        handshake = p.decode_open(msg.data)
        self._eio_sid = handshake.get('sid')
        self.transport = 'websocket'
        self.connected = True
        self._spawn(self._ws_reader(ws, self._generation))
        await ws.send_str(p.encode_connect())

    async def _ws_reader(self, ws, generation):
        reason = 'transport close'
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self._on_packet(msg.data, ws)
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    self.protocol_errors += 1
                else:
                    break
        except (aiohttp.ClientError, OSError) as exc:
            reason = f'transport error: {_error_name(exc)}'
        except asyncio.CancelledError:
            return
        if generation == self._generation and self._ws is ws:
            self._lost(reason)

    # -- long-polling ------------------------------------------------------------
    async def _connect_polling(self):
        body = await self._get(self.config.endpoint('polling'))
        packets = p.decode_payload(body)
        if not packets:
            raise ConnectError('empty handshake')
        handshake = p.decode_open(packets[0])
        self._eio_sid = handshake['sid']
        self._upgrades = handshake.get('upgrades', [])
        self.transport = 'polling'
        self.connected = True
        for packet in packets[1:]:
            self._on_packet(packet, None)
        await self._post(p.encode_connect())
        self._spawn(self._poll_loop(self._generation))

    @property
    def _headers(self):
        """The configured headers, plus the cookies this client's handshake
        set (a server may bind its session to them, like the kit's
        SESSION_BINDING=cookie): each client keeps its own, as a browser tab
        would, not in the session's shared jar."""
        cookie = getattr(self, '_cookie', None)
        return {**self.config.headers, 'Cookie': cookie} if cookie else \
            self.config.headers

    async def _get(self, url):
        async with self.session.get(url, headers=self._headers) as resp:
            if resp.status != 200:
                raise ConnectError(f'HTTP {resp.status}')
            if 'sid=' not in url:  # a handshake: keep what it set
                pairs = [v.split(';', 1)[0].strip()
                         for v in resp.headers.getall('Set-Cookie', [])]
                self._cookie = '; '.join(pairs) or None
            return await resp.text()

    async def _post(self, body: str):
        url = self.config.endpoint('polling', self._eio_sid)
        async with self._post_lock:
            async with self.session.post(
                    url, data=body.encode(), headers={
                        **self._headers,
                        'Content-Type': 'text/plain;charset=UTF-8'}) as resp:
                await resp.read()
                if resp.status != 200:
                    raise ConnectError(f'HTTP {resp.status} on POST')

    async def _poll_loop(self, generation):
        reason = 'transport close'
        url = self.config.endpoint('polling', self._eio_sid)
        try:
            while (generation == self._generation and self.transport == 'polling'
                   and self.connected):
                body = await self._get(url)
                if generation != self._generation:
                    return
                for packet in p.decode_payload(body):
                    self._on_packet(packet, None)
        except asyncio.CancelledError:
            return
        except (ConnectError, aiohttp.ClientError, OSError) as exc:
            reason = f'transport error: {_error_name(exc)}'
        if generation == self._generation and self.transport == 'polling':
            self._lost(reason)

    async def _upgrade(self):
        """Probe and switch to WebSocket, as Engine.IO clients do after polling."""
        if 'websocket' not in getattr(self, '_upgrades', []):
            self.upgrade_error = 'server offered no websocket upgrade'
            return
        try:
            ws = await self.session.ws_connect(
                self.config.endpoint('websocket', self._eio_sid),
                headers=self._headers, autoping=False, heartbeat=None,
                max_msg_size=0, compress=0, timeout=aiohttp.ClientWSTimeout(
                    ws_close=2))
        except aiohttp.WSServerHandshakeError as exc:
            self.upgrade_error = f'HTTP {exc.status}'
            return
        except (aiohttp.ClientError, OSError) as exc:
            self.upgrade_error = _error_name(exc)
            return
        try:
            await ws.send_str(p.EIO_PING + 'probe')
            msg = await ws.receive(timeout=self.config.connect_timeout)
            if msg.type != aiohttp.WSMsgType.TEXT or msg.data != '3probe':
                raise ConnectError(f'bad probe answer {msg.data!r}')
            # Switch before sending "5" so the poll loop stops issuing GETs.
            self.transport = 'websocket'
            self._ws = ws
            await ws.send_str(p.EIO_UPGRADE)
            self._spawn(self._ws_reader(ws, self._generation))
        except (ConnectError, aiohttp.ClientError, OSError,
                asyncio.TimeoutError) as exc:
            self.transport = 'polling'
            self._ws = None
            self.upgrade_error = _error_name(exc)
            await ws.close()

    # -- packets -------------------------------------------------------------------
    def _on_packet(self, packet: str, ws):
        if packet.startswith(MESSAGE_PREFIX):  # the hot path: one broadcast
            try:
                self.handler.on_message(self, json.loads(packet[2:])[1])
            except (ValueError, IndexError):
                self.protocol_errors += 1
            return
        kind = packet[:1]
        if kind == p.EIO_MESSAGE:
            try:
                self._on_sio(p.decode_sio(packet[1:]))
            except p.ProtocolError:
                self.protocol_errors += 1
        elif kind == p.EIO_PING:
            self._send_soon(p.EIO_PONG + packet[1:])
        elif kind == p.EIO_CLOSE:
            self._lost('server close')
        elif kind in (p.EIO_NOOP, p.EIO_PONG):
            pass
        else:
            self.protocol_errors += 1

    def _on_sio(self, pkt: p.SioPacket):
        if pkt.type == p.SIO_EVENT and isinstance(pkt.data, list) and pkt.data:
            event, args = pkt.data[0], pkt.data[1:]
            if event == 'welcome' and args and isinstance(args[0], dict):
                welcome = args[0]
                self.instance = welcome.get('instance')
                self.welcome_transport = welcome.get('transport')
                self.handler.on_welcome(self, welcome)
                if self._welcome and not self._welcome.done():
                    self._welcome.set_result(welcome)
            elif event == 'message' and args:
                self.handler.on_message(self, args[0])
            if pkt.id is not None:  # the server asked for an ack
                self._send_soon(p.encode_sio(p.SIO_ACK, [], pkt.id))
        elif pkt.type == p.SIO_ACK:
            fut = self._acks.get(pkt.id)
            if fut and not fut.done():
                fut.set_result(pkt.data[0] if pkt.data else None)
        elif pkt.type == p.SIO_CONNECT:
            self.sid = (pkt.data or {}).get('sid')
        elif pkt.type == p.SIO_CONNECT_ERROR:
            if self._welcome and not self._welcome.done():
                self._welcome.set_exception(
                    ConnectError(f'connect error {pkt.data!r}'))
        elif pkt.type == p.SIO_DISCONNECT:
            self._lost('server disconnect')

    # -- sending -------------------------------------------------------------------
    async def _send(self, packet: str):
        if not self.connected:
            raise ConnectionError('not connected')
        if self.transport == 'websocket':
            await self._ws.send_str(packet)
        else:
            await self._post(packet)

    def _send_soon(self, packet: str):
        async def send():
            try:
                await self._send(packet)
            except Exception:
                pass
        self._spawn(send())

    def _spawn(self, coro):
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- losing and regaining the connection ----------------------------------------
    def _lost(self, reason: str):
        if not self.connected:
            return
        self.connected = False
        self._generation += 1
        for fut in self._acks.values():
            if not fut.done():
                fut.set_exception(ConnectionError(reason))
        ws, self._ws = self._ws, None
        if ws is not None:
            self._spawn(_close_quietly(ws))
        if self._closing:
            return
        self.handler.on_disconnect(self, reason)
        if self.config.reconnect:
            self._spawn(self._reconnect())

    async def _reconnect(self):
        """Reconnect with bounded, jittered backoff (like socket.io-client)."""
        cfg = self.config
        error = 'no attempt'
        for attempt in range(cfg.reconnect_attempts):
            delay = min(cfg.reconnect_delay_max, cfg.reconnect_delay * 2 ** attempt)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            if self._closing:
                return
            try:
                await self.connect()
                return
            except ConnectError as exc:
                error = str(exc)
        self.handler.on_reconnect_failed(self, error)

    async def _abort(self):
        self.connected = False
        ws, self._ws = self._ws, None
        if ws is not None:
            await _close_quietly(ws)


async def _close_quietly(ws):
    try:
        await asyncio.wait_for(ws.close(), 2)
    except Exception:
        pass


def _error_name(exc: BaseException) -> str:
    text = str(exc).split('\n')[0][:120]
    return f'{type(exc).__name__}: {text}' if text else type(exc).__name__


def now() -> float:
    """Wall-clock seconds; every process on the host shares this clock."""
    return time.time()
