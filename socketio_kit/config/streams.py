"""The zero-loss settings: the Redis stream's bounds, the recovery window and
the outbox that holds emits while Redis is away (README "Zero message loss").

Part of socketio_kit/config/settings.py's settings (`Settings.streams`), in a module of its own
only to keep each file small, like security.py: settings.py calls
`load_streams` with the same environment mapping, so nothing here reads
os.environ, and a bad value raises ConfigError with one sentence naming the
variable.
"""
from dataclasses import dataclass
from typing import Mapping

from socketio_kit.config.parse import _int


@dataclass(frozen=True)
class Streams:
    """The stream every broadcast goes through, and what recovery may use."""
    maxlen: int             # STREAM_MAXLEN entries
    max_age: int            # STREAM_MAX_AGE seconds
    recovery_window: int    # RECOVERY_WINDOW seconds (0: recovery off)
    outbox_max_messages: int
    outbox_max_age: int


def load_streams(env: Mapping[str, str]) -> Streams:
    window = _int(env, 'RECOVERY_WINDOW', 120, 0, 86400, ' seconds (0: off)')
    # At least the window, so that every recovery it allows can be replayed.
    max_age = _int(env, 'STREAM_MAX_AGE', max(600, window), max(1, window), 2592000,
                   ' seconds (at least RECOVERY_WINDOW)')
    return Streams(
        maxlen=_int(env, 'STREAM_MAXLEN', 100_000, 1000, 10**8),
        max_age=max_age,
        recovery_window=window,
        outbox_max_messages=_int(env, 'OUTBOX_MAX_MESSAGES', 10_000, 1, 10**7),
        outbox_max_age=_int(env, 'OUTBOX_MAX_AGE', 60, 1, 86400, ' seconds'),
    )
