"""The parsers every settings module uses: a value from the environment
mapping, checked, or ConfigError with one sentence that names the variable and
the fix. socketio_kit/config/settings.py (and its parts, app/config_*.py) call them with the
mapping load_settings() was given; nothing here reads os.environ."""
from typing import Mapping

TRUE = ('1', 'true', 'yes', 'on')
FALSE = ('0', 'false', 'no', 'off')


class ConfigError(ValueError):
    """A configuration value that must stop start-up."""


# Instance names end up in Engine.IO session ids ("<name>.<random>") and in
# nginx upstream names, so they may not contain "." or anything nginx or a URL
# would need to escape.


def _get(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name)
    return default if value is None or value.strip() == '' else value.strip()


def _int(env, name, default, low, high, unit=''):
    raw = _get(env, name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f'{name}={raw!r} is not a whole number; set {name} to an integer '
                          f'from {low} to {high}{unit}.') from None
    if not low <= value <= high:
        raise ConfigError(f'{name}={value} is out of range; set {name} to an integer from '
                          f'{low} to {high}{unit}.')
    return value


def _bool(env, name, default):
    raw = _get(env, name, 'true' if default else 'false').lower()
    if raw in TRUE or raw in FALSE:
        return raw in TRUE
    raise ConfigError(f'{name}={raw!r} is not a boolean; set {name} to true or false.')


def _choice(env, name, default, choices):
    raw = _get(env, name, default).lower()
    if raw not in choices:
        raise ConfigError(f'{name}={raw!r} is not supported; set {name} to one of: '
                          f'{", ".join(choices)}.')
    return raw
