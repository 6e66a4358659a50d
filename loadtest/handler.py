"""What a client is told (ClientConfig) and what it tells (Handler), and how
a connection attempt fails (ConnectError)."""
import dataclasses
from dataclasses import dataclass
from typing import Dict, Optional


class ConnectError(RuntimeError):
    """One connection attempt failed; the message says how (HTTP status...)."""


# The scenarios whose clients reconnect (and recover) when they lose the server.
RECONNECTING = ('reconnect', 'redis-outage', 'rolling-restart')


@dataclass(frozen=True)
class ClientConfig:
    """One client's part of the run's Config (loadtest/config.py holds the
    defaults): build it with `ClientConfig.of(config)`."""
    url: str
    path: str
    origin: Optional[str]
    transport: str
    offer_deflate: bool
    connect_timeout: float
    reconnect: bool
    reconnect_delay: float
    reconnect_delay_max: float
    recover: bool                 # reconnect with {pid, offset} (recovering.py)
    reconnect_attempts: int = 60

    @classmethod
    def of(cls, cfg, **changes) -> 'ClientConfig':
        """From a loadtest Config; reconnects in the scenarios that take
        instances or Redis away."""
        made = cls(url=cfg.url, path=cfg.path, origin=cfg.origin,
                   transport=cfg.transport, offer_deflate=cfg.offers_deflate,
                   connect_timeout=cfg.connect_timeout,
                   reconnect=cfg.scenario in RECONNECTING,
                   reconnect_delay=cfg.reconnect_delay,
                   reconnect_delay_max=cfg.reconnect_delay_max, recover=cfg.recover)
        return dataclasses.replace(made, **changes) if changes else made

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
