"""One module per scenario; each has `run(r: Run)` (selftest has its own)."""
import importlib

MODULES = {'broadcast': 'broadcast', 'reconnect': 'reconnect', 'ramp': 'ramp',
           'redis-outage': 'redis_outage', 'rolling-restart': 'rolling_restart',
           'slow-consumer': 'slow_consumer', 'selftest': 'selftest'}


def scenario(name: str):
    """The module of scenario `name`."""
    return importlib.import_module(f'loadtest.scenarios.{MODULES[name]}')
