"""socketio-kit: python-socketio on many instances.

`socketio_kit.Server` is a drop-in `socketio.Server` on the kit's runtime;
the kit serves the application that `APP=module:attr` names (README, "Your
own application"). Every other name is python-socketio's own
(`socketio_kit.WSGIApp is socketio.WSGIApp`), so an application written for
python-socketio moves to the kit with one changed line:
`import socketio_kit as socketio`. The names load on first use, so that
`python -m socketio_kit.config` needs only the standard library.
"""
import importlib

_EXPORTS = {
    'ConfigError': 'socketio_kit.config',
    'MessageTooLarge': 'socketio_kit.policy.limits',
    'RoomRefused': 'socketio_kit.policy.rooms',
    'Server': 'socketio_kit.server',
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    socketio = importlib.import_module('socketio')
    try:
        return getattr(socketio, name)
    except AttributeError:
        raise AttributeError(f'module socketio_kit has no attribute {name!r}') from None
