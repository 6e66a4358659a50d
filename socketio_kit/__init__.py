"""socketio-kit: python-socketio on many instances.

`socketio_kit.Server` is a drop-in `socketio.Server` on the kit's runtime;
the kit serves the application that `APP=module:attr` names (README, "Your
own application").
"""
from socketio_kit.config import ConfigError
from socketio_kit.policy.limits import MessageTooLarge
from socketio_kit.policy.rooms import RoomRefused
from socketio_kit.server import Server

__all__ = ['ConfigError', 'MessageTooLarge', 'RoomRefused', 'Server']
