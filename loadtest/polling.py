"""Engine.IO long-polling on aiohttp, and the probe that upgrades it.

Polling is not the generator's hot path (a browser only polls until its
upgrade), so it stays on aiohttp. The WebSocket it upgrades to is the same
picows WebSocket the `websocket` transport uses.
"""
import asyncio
from typing import Callable, List, Optional

import aiohttp

from loadtest import protocol as p


class PollingError(ConnectionError):
    """An HTTP status other than 200 on a poll or a post."""


class Polling:
    """One Engine.IO session over HTTP: GET to receive, POST to send."""

    def __init__(self, session: aiohttp.ClientSession, endpoint: Callable[..., str],
                 headers: dict):
        self.session, self.endpoint, self.headers = session, endpoint, headers
        self.sid: Optional[str] = None
        self.upgrades: List[str] = []
        self.cookie: Optional[str] = None
        self._post_lock = asyncio.Lock()

    @property
    def session_headers(self) -> dict:
        """The configured headers plus the cookies the handshake set: a server
        may bind its session to them (the kit's SESSION_BINDING=cookie), and
        each client keeps its own, as a browser tab would."""
        return {**self.headers, 'Cookie': self.cookie} if self.cookie else self.headers

    async def open(self) -> List[str]:
        """The handshake; returns the packets that came after the open packet."""
        packets = p.decode_payload(await self.get(self.endpoint('polling')))
        if not packets:
            raise PollingError('empty handshake')
        handshake = p.decode_open(packets[0])
        self.sid = handshake['sid']
        self.upgrades = handshake.get('upgrades', [])
        return packets[1:]

    async def get(self, url: str) -> str:
        async with self.session.get(url, headers=self.session_headers) as resp:
            if resp.status != 200:
                raise PollingError(f'HTTP {resp.status}')
            if self.sid is None:  # the handshake: keep what it set
                pairs = [v.split(';', 1)[0].strip()
                         for v in resp.headers.getall('Set-Cookie', [])]
                self.cookie = '; '.join(pairs) or None
            return await resp.text()

    async def post(self, body: str):
        headers = {**self.session_headers, 'Content-Type': 'text/plain;charset=UTF-8'}
        async with self._post_lock:
            async with self.session.post(self.endpoint('polling', self.sid),
                                         data=body.encode(), headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    raise PollingError(f'HTTP {resp.status} on POST')

    async def receive_loop(self, still_polling: Callable[[], bool],
                           on_packet: Callable[[str], None]) -> Optional[str]:
        """GET until still_polling() turns false (None) or the session fails
        (the reason). Bounded by the session: every GET waits at most a ping
        interval on the server."""
        url = self.endpoint('polling', self.sid)
        try:
            for _ in range(10_000_000):
                if not still_polling():
                    return None
                body = await self.get(url)
                if not still_polling():
                    return None
                for packet in p.decode_payload(body):
                    on_packet(packet)
        except (PollingError, aiohttp.ClientError, OSError) as exc:
            return f'transport error: {error_name(exc)}'
        return 'transport close'


def error_name(exc: BaseException) -> str:
    text = str(exc).split('\n')[0][:120]
    return f'{type(exc).__name__}: {text}' if text else type(exc).__name__
