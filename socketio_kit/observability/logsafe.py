"""Logging that an attacker cannot amplify.

- One line per error: tracebacks are kept only for the kit's own bugs and
  the application's (a handler that raised, logger socketio_kit.app);
  records from python-socketio and python-engineio (whose errors come from
  what clients send) are reduced to one line naming the exception.
- Rate-limited: at most LOG_RATE_PER_MINUTE lines a minute per kind of
  message (its logger and format string); what is held back is counted and
  reported in one line when the minute is over.
- No double logging: python-socketio and python-engineio get loggers of
  their own, so they add no handler next to the root one.
"""
import logging
import sys
import time
from typing import Dict, Tuple

CLIENT_LOGGERS = ('socketio', 'engineio', 'socketio_kit.policy.guard', 'socketio_kit.policy.limits')
WINDOW = 60.0


class OneLine(logging.Filter):
    """Drop the traceback of records about client input: keep one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.name.startswith(CLIENT_LOGGERS):
            exc = record.exc_info[1]
            record.msg = f'{record.getMessage()}: {type(exc).__name__}: {exc}'
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


class RateLimit(logging.Filter):
    """At most `per_minute` records per (logger, format string) a minute."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        super().__init__()
        self.per_minute, self.clock = per_minute, clock
        self.kinds: Dict[Tuple[str, str], list] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        key = (record.name, str(record.msg))
        entry = self.kinds.get(key)
        if entry is None or now - entry[0] >= WINDOW:
            held = entry[2] if entry else 0
            if len(self.kinds) > 10_000:  # format strings are few; be safe
                self.kinds.clear()
            self.kinds[key] = [now, 1, 0]
            if held:
                record.msg = (f'{record.msg} ({held} similar lines held back '
                              f'in the last minute)')
            return True
        entry[1] += 1
        if entry[1] <= self.per_minute:
            return True
        entry[2] += 1
        return False


def library_logger(name: str, level: int = logging.ERROR) -> logging.Logger:
    """A logger for python-socketio / python-engineio that they will not add
    a handler to (they do, to their default logger, next to root's)."""
    logger = logging.getLogger(name)
    logger.setLevel(level)
    return logger


def configure(instance: str, level: str, per_minute: int):
    """Root logging of an instance: one line per record, rate-limited."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        f'%(asctime)s %(levelname)s [{instance}] %(name)s: %(message)s'))
    handler.addFilter(OneLine())
    handler.addFilter(RateLimit(per_minute))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Their default loggers may already carry a handler of their own.
    for name in ('engineio.server', 'socketio.server', 'engineio.client',
                 'socketio.client'):
        for old in list(logging.getLogger(name).handlers):
            logging.getLogger(name).removeHandler(old)
