"""Connection-state recovery, as socket.io-client does it, for the load
test's raw client: keep the `pid` of the CONNECT reply and the offset (last
argument) of every broadcast; reconnect with `{pid, offset}`; a reply with
the same pid means the session was recovered, and the broadcasts that come
before `welcome` are the server's replay of what was missed."""
import asyncio
import random
from typing import Optional

from loadtest.handler import ConnectError


class SessionRecovery:
    """One client's recovery bookkeeping."""
    __slots__ = ('enabled', 'pid', 'offset', 'recovered', 'replaying', 'replayed',
                 'recoveries', 'new_sessions')

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.pid: Optional[str] = None
        self.offset: Optional[bytes] = None
        self.recovered = self.replaying = False
        self.replayed = self.recoveries = self.new_sessions = 0

    def payload(self) -> Optional[dict]:
        """The CONNECT payload: {pid, offset} once there is a session."""
        if not (self.enabled and self.pid):
            return None
        out = {'pid': self.pid}
        if self.offset:
            out['offset'] = self.offset.decode()
        return out

    def on_connect(self, data, reconnect: bool):
        pid = (data or {}).get('pid') if isinstance(data, dict) else None
        self.recovered = bool(pid) and pid == self.pid
        self.replaying = self.recovered
        if reconnect:
            if self.recovered:
                self.recoveries += 1
            else:
                self.new_sessions += 1
        self.pid = pid

    def on_broadcast(self, data: bytes):
        """Keep the offset: the broadcast's last argument, a string."""
        if data[-2:] == b'"]':
            self.offset = data[data.rfind(b'"', 0, -2) + 1:-2]
        if self.replaying:
            self.replayed += 1


async def reconnect(client):
    """Reconnect client with bounded, jittered backoff (like socket.io-client),
    presenting its session for recovery."""
    cfg = client.config
    error = 'no attempt'
    for attempt in range(cfg.reconnect_attempts):
        delay = min(cfg.reconnect_delay_max, cfg.reconnect_delay * 2 ** attempt)
        await asyncio.sleep(delay * random.uniform(0.5, 1.0))
        if client._closing:
            return
        try:
            await client.connect()
            return
        except ConnectError as exc:
            error = str(exc)
    client.handler.on_reconnect_failed(client, error)
