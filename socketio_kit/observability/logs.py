"""Logging of one instance: LOG_FORMAT=text (the default) or json.

json: one object per line (python-json-logger), with `time`, `level`,
`logger`, `message`, `instance`, and `sid`, `event` and `reason` when the line
is about one client or one kind of event. Code adds those with
`extra=fields(sid=..., event=..., reason=...)`. gunicorn's own lines go
through the same formatter (`GunicornLogger`), so the whole stream parses.

What this module also removes:
- the second copy of every python-engineio / python-socketio line: their
  default loggers carry a handler of their own next to the root one;
- python-socketio's Redis retry errors, repeated with backoff for as long as
  Redis is down: `RedisWatch` logs one line when Redis goes away and one when
  it is back, and keeps socketio_redis_up current;
- eventlet's multi-line deprecation banner on every start (gunicorn_conf).
"""
import logging
import sys
import time
import warnings
from typing import Callable, Optional

from pythonjsonlogger.json import JsonFormatter

LIBRARY_LOGGERS = ('engineio.server', 'socketio.server', 'engineio.client',
                   'socketio.client')
# python-socketio's pub/sub manager says these on every retry while Redis is down.
REDIS_RETRY_LINES = ('Cannot receive from redis', 'Cannot publish to redis')
JSON_FIELDS = '%(levelname)s %(name)s %(message)s'
JSON_RENAME = {'levelname': 'level', 'name': 'logger'}


def fields(sid=None, event=None, reason=None) -> dict:
    """`extra=` for a log call: only the fields that apply."""
    return {k: v for k, v in (('sid', sid), ('event', event), ('reason', reason))
            if v is not None}


class InstanceField(logging.Filter):
    """Stamps every record with the instance name."""

    def __init__(self, instance: str):
        super().__init__()
        self.instance = instance

    def filter(self, record):
        record.instance = self.instance
        return True


class DropRedisRetries(logging.Filter):
    """RedisWatch reports an outage once; the library's retries add nothing."""

    def filter(self, record):
        return not (record.name.startswith('socketio')
                    and str(record.msg).startswith(REDIS_RETRY_LINES))


def formatter(log_format: str, instance: str) -> logging.Formatter:
    if log_format == 'json':
        # `time`: ISO 8601, UTC, with microseconds.
        return JsonFormatter(JSON_FIELDS, rename_fields=JSON_RENAME,
                             timestamp='time', json_ensure_ascii=False)
    return logging.Formatter(
        f'%(asctime)s %(levelname)s [{instance}] %(name)s: %(message)s')


def configure(instance: str, level: str, log_format: str, filters=()):
    """Root logging of an instance: one handler on stderr, one line a record.
    `filters` run after the kit's own (e.g. a rate limit on repeated lines)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format, instance))
    handler.addFilter(InstanceField(instance))
    handler.addFilter(DropRedisRetries())
    for extra in filters:
        handler.addFilter(extra)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    quiet_library_handlers()


def quiet_library_handlers():
    """python-engineio and python-socketio add a handler to their default
    loggers when a server is built; the root handler already prints those
    records, so each line would appear twice. Call after building servers."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)


def silence_eventlet_banner():
    """eventlet warns, in a dozen lines, on every import that it is in
    maintenance mode; the README says so once (WORKER_CLASS=gevent)."""
    warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')


class RedisWatch:
    """Pings Redis every `interval` seconds in a background task: one WARNING
    line when it stops answering, one INFO line when it is back, and the
    latest state for /metrics (socketio_redis_up)."""

    def __init__(self, ping: Callable[[], bool], interval: float = 2.0,
                 log: Optional[logging.Logger] = None):
        self.ping, self.interval = ping, interval
        self.log = log or logging.getLogger('socketio_kit.redis')
        self.up = True
        self.down_since = 0.0

    def check(self) -> bool:
        up = self.ping()
        if self.up and not up:
            self.down_since = time.monotonic()
            self.log.warning('Redis does not answer: broadcasts from this instance do not '
                             'reach the others and /_kit/healthz answers 503 until it is back; '
                             'check REDIS_URL and the Redis server',
                             extra=fields(event='redis_down', reason='no answer'))
        elif up and not self.up:
            self.log.info('Redis answers again after %.1fs', time.monotonic() - self.down_since,
                          extra=fields(event='redis_up'))
        self.up = up
        return up

    def run(self, sleep: Callable[[float], None], rounds: int = 10**12):
        for _ in range(rounds):  # as long as the worker, in practice
            try:
                self.check()
            except Exception:  # the watch must outlive any one failure
                self.log.exception('Redis watch failed')
            sleep(self.interval)


class WithoutEventletNotice(logging.Filter):
    """gunicorn 25 warns at every start that its eventlet worker is deprecated;
    the README says it once (WORKER_CLASS=gevent is the way off eventlet)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith('The eventlet worker is DEPRECATED')


def gunicorn_logger_class(log_format: str):
    """gunicorn's Logger without the eventlet notice, and with the kit's
    formatter on its error log when LOG_FORMAT=json."""
    from gunicorn.glogging import Logger

    class GunicornLogger(Logger):
        def setup(self, cfg):
            super().setup(cfg)
            instance = cfg.proc_name.removeprefix('socketio-')
            for handler in self.error_log.handlers:
                handler.addFilter(WithoutEventletNotice())
                if log_format == 'json':
                    handler.setFormatter(formatter(log_format, instance))
                    handler.addFilter(InstanceField(instance))
    return GunicornLogger
