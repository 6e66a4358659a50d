"""What a client is told (ClientConfig) and what it tells (Handler), and how
a connection attempt fails (ConnectError)."""
from dataclasses import dataclass
from typing import Dict, Optional


class ConnectError(RuntimeError):
    """One connection attempt failed; the message says how (HTTP status...)."""


@dataclass(frozen=True)
class ClientConfig:
    url: str = 'http://127.0.0.1:8080'
    path: str = '/socket.io'
    origin: Optional[str] = 'http://localhost:8081'
    transport: str = 'websocket'
    offer_deflate: bool = True
    connect_timeout: float = 10.0
    reconnect: bool = False
    reconnect_delay: float = 0.5
    reconnect_delay_max: float = 2.0
    reconnect_attempts: int = 60
    recover: bool = True          # reconnect with {pid, offset} (recovering.py)

    def endpoint(self, transport: str, sid: Optional[str] = None) -> str:
        url = f'{self.url.rstrip("/")}{self.path}/?EIO=4&transport={transport}'
        return f'{url}&sid={sid}' if sid else url

    @property
    def headers(self) -> Dict[str, str]:
        return {'Origin': self.origin} if self.origin else {}


class Handler:
    """What a scenario hears from its clients. Callbacks are synchronous and
    must be quick: they run inside the connection's read callback."""

    def on_welcome(self, client, data: dict):
        pass

    def on_broadcast(self, client, packet: bytes):
        """A `42["message",...]` packet, undecoded (the hot path)."""

    def on_disconnect(self, client, reason: str):
        pass

    def on_reconnect_failed(self, client, error: str):
        pass
