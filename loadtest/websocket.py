"""The client's WebSocket, on picows (a Cython asyncio WebSocket library).

picows calls back once per frame with no per-message task or queue, which is
what lets one generator process read its clients' broadcasts within a core
(bench/NOTES.md has the aiohttp vs picows measurement). By default the
handshake offers permessage-deflate exactly as Chrome does; frames with RSV1
set are inflated (see deflate.py). This side never compresses what it sends,
which RFC 7692 allows.
"""
from typing import Callable, Optional

from picows import WSError, WSListener, WSMsgType, ws_connect

from loadtest.deflate import OFFER, Inflater, negotiated

TEXT, CONTINUATION, CLOSE = WSMsgType.TEXT, WSMsgType.CONTINUATION, WSMsgType.CLOSE


class HandshakeRefused(ConnectionError):
    """The server answered the upgrade with an HTTP error (status in .status)."""

    def __init__(self, status):
        super().__init__(f'HTTP {status}')
        self.status = status


class _Listener(WSListener):
    """Frames in, whole text messages (bytes) out to on_text."""

    def __init__(self):
        # Frames can arrive with the handshake answer, before bind(): keep them.
        self.pending = []
        self.on_text: Callable[[bytes], None] = self.pending.append
        self.on_closed: Callable[[], None] = _ignore
        self.on_bad_frame: Callable[[str], None] = _ignore
        self.inflate: Optional[Inflater] = None
        self.parts = None          # a fragmented message being collected
        self.parts_compressed = False

    def on_ws_connected(self, transport):
        # Set up inflating before the first frame: it may have come with the
        # handshake answer, compressed.
        answer = transport.response.headers.get('Sec-WebSocket-Extensions')
        self.extensions, self.agreed = answer, negotiated(answer)
        self.inflate = Inflater(self.agreed) if self.agreed else None

    def on_ws_frame(self, transport, frame):
        kind = frame.msg_type
        if kind == TEXT:
            data = frame.get_payload_as_bytes()
            if not frame.fin:
                self.parts, self.parts_compressed = [data], frame.rsv1
                return
            if frame.rsv1:
                if self.inflate is None:
                    return self.on_bad_frame('RSV1 set without permessage-deflate')
                data = self.inflate(data)
            self.on_text(data)
        elif kind == CONTINUATION and self.parts is not None:
            self.parts.append(frame.get_payload_as_bytes())
            if frame.fin:
                data, self.parts = b''.join(self.parts), None
                if self.parts_compressed:
                    data = self.inflate(data)
                self.on_text(data)
        elif kind == CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        elif kind != WSMsgType.PONG:  # picows answers pings itself
            self.on_bad_frame(f'unexpected {kind.name} frame')

    def on_ws_disconnected(self, transport):
        self.on_closed()


def _ignore(*_):
    pass


class WebSocket:
    """One open WebSocket connection."""

    def __init__(self, transport, listener: _Listener, compressed: bool,
                 extensions: Optional[str]):
        self.transport, self.listener = transport, listener
        self.compressed = compressed        # permessage-deflate was negotiated
        self.extensions = extensions        # the server's answer, verbatim

    def bind(self, on_text, on_closed, on_bad_frame):
        listener = self.listener
        listener.on_text, listener.on_closed, listener.on_bad_frame = \
            on_text, on_closed, on_bad_frame
        pending, listener.pending = listener.pending, []
        for data in pending:
            on_text(data)
        if self.transport.is_disconnected:
            on_closed()

    def send(self, text: str):
        if not self.transport.is_disconnected:
            self.transport.send(TEXT, text.encode())

    def close(self):
        """Close without waiting; the listener's on_closed follows."""
        transport = self.transport
        if not transport.is_disconnected:
            if not transport.is_close_frame_sent:
                transport.send_close()
            transport.disconnect()


async def open_websocket(url: str, headers: dict, offer_deflate: bool,
                         timeout: float) -> WebSocket:
    """Connect and upgrade; raises HandshakeRefused, WSError or OSError."""
    ws_url = 'ws' + url[4:] if url.startswith('http') else url
    extra = dict(headers)
    if offer_deflate:
        extra['Sec-WebSocket-Extensions'] = OFFER
    try:
        # aiofastnet (picows' optional transport) measured no faster than
        # uvloop's own in the selftest: keep one transport implementation.
        transport, listener = await ws_connect(
            _Listener, ws_url, extra_headers=extra, websocket_handshake_timeout=timeout,
            enable_auto_pong=True, max_frame_size=64 * 1024 * 1024,
            logger_name='loadtest', use_aiofastnet=False)
    except WSError as exc:
        response = getattr(exc, 'response', None)
        if response is not None and response.status is not None:
            raise HandshakeRefused(int(response.status)) from None
        raise
    if listener.agreed and not offer_deflate:
        transport.disconnect()
        raise WSError('server enabled permessage-deflate that was not offered')
    return WebSocket(transport, listener, listener.agreed is not None, listener.extensions)
