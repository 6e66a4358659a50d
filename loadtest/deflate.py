"""permessage-deflate (RFC 7692) on the receiving side, as browsers do it.

Chrome and socket.io-client offer `permessage-deflate; client_max_window_bits`
on every WebSocket. When the server accepts, each compressed message has RSV1
set on its first frame; its payload is raw deflate (wbits -15) that ends in a
sync flush whose four bytes 00 00 ff ff the sender strips. The receiver adds
them back. Unless the server said `server_no_context_takeover`, the server
keeps its compression window across messages, so the receiver must keep one
decompressor per connection; with it, every message starts fresh.
"""
import zlib
from dataclasses import dataclass
from typing import Optional

OFFER = 'permessage-deflate; client_max_window_bits'
TAIL = b'\x00\x00\xff\xff'


@dataclass(frozen=True)
class Negotiated:
    """What the server's Sec-WebSocket-Extensions answer agreed to."""
    server_no_context_takeover: bool = False
    server_max_window_bits: int = 15


def negotiated(header: Optional[str]) -> Optional[Negotiated]:
    """Parse the server's answer; None when permessage-deflate was not accepted."""
    for extension in (header or '').split(','):
        params = [p.strip() for p in extension.split(';')]
        if params[0].lower() != 'permessage-deflate':
            continue
        no_takeover, bits = False, 15
        for param in params[1:]:
            name, _, value = param.partition('=')
            name = name.strip().lower()
            if name == 'server_no_context_takeover':
                no_takeover = True
            elif name == 'server_max_window_bits' and value.strip('" '):
                bits = int(value.strip('" '))
        return Negotiated(no_takeover, bits)
    return None


class Inflater:
    """Decompresses the messages of one connection, in order."""

    __slots__ = ('no_context_takeover', '_stream')

    def __init__(self, agreed: Negotiated):
        self.no_context_takeover = agreed.server_no_context_takeover
        # A window of 15 bits decodes any smaller window the server chose.
        self._stream = zlib.decompressobj(-15)

    def __call__(self, payload: bytes) -> bytes:
        if self.no_context_takeover:
            return zlib.decompressobj(-15).decompress(payload + TAIL)
        return self._stream.decompress(payload + TAIL)


def deflate_message(payload: bytes, compressor=None) -> bytes:
    """Compress one message as a permessage-deflate sender does (the selftest's
    source and the tests use it). With a shared `compressor` the window carries
    over (context takeover); without, every message stands alone."""
    stream = compressor or zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    data = stream.compress(payload) + stream.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4] if data.endswith(TAIL) else data
