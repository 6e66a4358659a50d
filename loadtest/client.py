"""A small, fast asyncio Socket.IO client (Engine.IO v4 / Socket.IO v5).

It speaks the protocol itself (protocol.py), so one process holds thousands of
connections. Transports: `websocket` (straight to it), `polling`, `upgrade`
(polling, then the WebSocket upgrade, as browsers do; if that fails it stays on
polling and `transport` says so). WebSockets run on picows and offer
permessage-deflate like a browser unless told not to. The server pings, this
client answers. Reconnects recover the session (recovering.py). Nothing falls
back silently.
"""
import asyncio
from typing import Any, Dict, Optional

import aiohttp
from picows import WSError

from loadtest import protocol as p
from loadtest.handler import ClientConfig, ConnectError, Handler
from loadtest.polling import Polling, PollingError, error_name
from loadtest.recovering import SessionRecovery, reconnect
from loadtest.state import ClientState
from loadtest.websocket import HandshakeRefused, WebSocket, open_websocket

MESSAGE_PREFIX = b'42["message",'
TRANSPORT_ERRORS = (WSError, OSError, aiohttp.ClientError, p.ProtocolError, PollingError)


class Client:
    """One Socket.IO client connection to the default namespace."""

    def __init__(self, config: ClientConfig, handler: Handler,
                 session: Optional[aiohttp.ClientSession] = None, index: int = 0,
                 state: Optional[ClientState] = None):
        self.config, self.handler, self.session = config, handler, session
        self.index = index
        self.state = state or ClientState()
        self.connected = False
        self.instance: Optional[str] = None
        self.sid: Optional[str] = None
        self.transport: Optional[str] = None          # what is really in use
        self.welcome_transport: Optional[str] = None  # what the server saw
        self.compressed: Optional[bool] = None        # permessage-deflate agreed
        self.upgrade_error: Optional[str] = None
        self.protocol_errors = 0
        self.connects = 0
        self.recovery = SessionRecovery(config.recover)
        self._ws: Optional[WebSocket] = None
        self._polling: Optional[Polling] = None
        self._acks: Dict[int, asyncio.Future] = {}
        self._next_ack = 0
        self._waiting: Dict[str, asyncio.Future] = {}   # 'open', 'welcome', 'probe'
        self._tasks = set()
        self._closing = False
        self._generation = 0  # bumps on every connect; stale transports stop

    # -- public API ----------------------------------------------------------
    async def connect(self):
        """One connection attempt; returns once `welcome` arrived."""
        self._generation += 1
        welcome = self._expect('welcome')
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                if self.config.transport == 'websocket':
                    opened = self._expect('open')
                    self._attach(await self._open_ws(self.config.endpoint('websocket')))
                    await opened
                    self._ws.send(p.encode_connect(self.recovery.payload()))
                else:
                    await self._connect_polling()
                await welcome
        except TimeoutError:
            self._abort()
            raise ConnectError('timeout') from None
        except ConnectError:
            self._abort()
            raise
        except TRANSPORT_ERRORS as exc:
            self._abort()
            raise ConnectError(str(exc) if isinstance(exc, HandshakeRefused)
                               else error_name(exc)) from None
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
        self._abort()
        for task in list(self._tasks):
            task.cancel()

    # -- transports ------------------------------------------------------------
    async def _open_ws(self, url: str, headers=None) -> WebSocket:
        c = self.config
        return await open_websocket(url, headers or c.headers, c.offer_deflate, c.connect_timeout)

    def _attach(self, ws: WebSocket):
        """Make ws the connection's transport and route its messages here."""
        self._ws, self.transport, self.compressed = ws, 'websocket', ws.compressed
        generation = self._generation

        def closed():
            if generation == self._generation and self._ws is ws:
                if self.connected:
                    self._lost('transport close')
                else:  # still connecting: fail now rather than time out
                    for fut in self._waiting.values():
                        if not fut.done():
                            fut.set_exception(ConnectError('closed while connecting'))

        def bad_frame(why):
            self.protocol_errors += 1
        ws.bind(self._on_text, closed, bad_frame)

    async def _connect_polling(self):
        self._polling = Polling(self.session, self.config.endpoint, self.config.headers)
        packets = await self._polling.open()
        self.transport, self.connected = 'polling', True
        for packet in packets:
            self._on_packet(packet)
        await self._polling.post(p.encode_connect(self.recovery.payload()))
        self._spawn(self._poll(self._generation))

    async def _poll(self, generation):
        def still():
            return (generation == self._generation and self.transport == 'polling'
                    and self.connected)
        reason = await self._polling.receive_loop(still, self._on_packet)
        if reason and generation == self._generation and self.transport == 'polling':
            self._lost(reason)

    async def _upgrade(self):
        """Probe and switch to WebSocket, as Engine.IO clients do after polling."""
        if 'websocket' not in self._polling.upgrades:
            self.upgrade_error = 'server offered no websocket upgrade'
            return
        try:
            ws = await self._open_ws(self.config.endpoint('websocket', self._polling.sid),
                                     self._polling.session_headers)
        except TRANSPORT_ERRORS as exc:
            self.upgrade_error = error_name(exc)
            return
        probe = self._expect('probe')
        ws.bind(self._on_text, lambda: None, lambda why: None)
        try:
            ws.send(p.EIO_PING + 'probe')
            async with asyncio.timeout(self.config.connect_timeout):
                await probe
            # Switch before sending "5" so the poll loop stops issuing GETs.
            self._attach(ws)
            ws.send(p.EIO_UPGRADE)
        except (TimeoutError, *TRANSPORT_ERRORS) as exc:
            self.transport, self._ws, self.compressed = 'polling', None, None
            self.upgrade_error = error_name(exc) if str(exc) else 'probe timeout'
            ws.close()

    # -- packets -------------------------------------------------------------------
    def _on_text(self, data: bytes):
        if data.startswith(MESSAGE_PREFIX):  # the hot path: one broadcast
            self.recovery.on_broadcast(data)
            self.handler.on_broadcast(self, data)
        else:
            self._on_packet(data.decode())

    def _on_packet(self, packet: str):
        kind = packet[:1]
        if kind == p.EIO_MESSAGE:
            if packet.startswith('42["message",'):  # a broadcast over polling
                self.recovery.on_broadcast(packet.encode())
                self.handler.on_broadcast(self, packet.encode())
                return
            try:
                self._on_sio(p.decode_sio(packet[1:]))
            except p.ProtocolError:
                self.protocol_errors += 1
        elif kind == p.EIO_PING:
            self._send_soon(p.EIO_PONG + packet[1:])
        elif kind == p.EIO_PONG and packet[1:] == 'probe':
            self._resolve('probe', None)
        elif kind == p.EIO_OPEN:
            self._resolve('open', p.decode_open(packet))
            self.connected = True
        elif kind == p.EIO_CLOSE:
            self._lost('server close')
        elif kind not in (p.EIO_NOOP, p.EIO_PONG):
            self.protocol_errors += 1

    def _on_sio(self, pkt: p.SioPacket):
        if pkt.type == p.SIO_EVENT and isinstance(pkt.data, list) and pkt.data:
            event, args = pkt.data[0], pkt.data[1:]
            if event == 'welcome' and args and isinstance(args[0], dict):
                self.instance = args[0].get('instance')
                self.welcome_transport = args[0].get('transport')
                self.recovery.replaying = False
                self.handler.on_welcome(self, args[0])
                self._resolve('welcome', args[0])
            if pkt.id is not None:  # the server asked for an ack
                self._send_soon(p.encode_sio(p.SIO_ACK, [], pkt.id))
        elif pkt.type == p.SIO_ACK:
            fut = self._acks.get(pkt.id)
            if fut and not fut.done():
                fut.set_result(pkt.data[0] if pkt.data else None)
        elif pkt.type == p.SIO_CONNECT:
            self.sid = (pkt.data or {}).get('sid')
            self.recovery.on_connect(pkt.data, reconnect=self.connects > 0)
        elif pkt.type == p.SIO_CONNECT_ERROR:
            fut = self._waiting.get('welcome')
            if fut and not fut.done():
                fut.set_exception(ConnectError(f'connect error {pkt.data!r}'))
        elif pkt.type == p.SIO_DISCONNECT:
            self._lost('server disconnect')

    def _expect(self, what: str) -> asyncio.Future:
        self._waiting[what] = asyncio.get_running_loop().create_future()
        return self._waiting[what]

    def _resolve(self, what: str, value):
        fut = self._waiting.pop(what, None)
        if fut is not None and not fut.done():
            fut.set_result(value)

    # -- sending -------------------------------------------------------------------
    async def _send(self, packet: str):
        if not self.connected:
            raise ConnectionError('not connected')
        if self.transport == 'websocket':
            self._ws.send(packet)
        else:
            await self._polling.post(packet)

    def _send_soon(self, packet: str):
        if self.transport == 'websocket' and self._ws is not None:
            self._ws.send(packet)
            return

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
        self._abort()
        if self._closing:
            return
        self.handler.on_disconnect(self, reason)
        if self.config.reconnect:
            self._spawn(reconnect(self))

    def _abort(self):
        self.connected = False
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.close()
