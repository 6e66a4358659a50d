"""The front door: `APP=module:attr` names the application the kit serves.

`attr` is a `socketio_kit.Server`, or a WSGI app wrapping one:
`socketio.WSGIApp(sio, other_app)`, or a Flask app whose `wsgi_app` is such
a WSGIApp (python-socketio's own examples). `APP_PATH` is a directory put
first on `sys.path`, where the module lives. Without APP, the kit serves its
demo contract (`demo.app:sio`). Every mistake stops start-up with one
sentence that names the variable.
"""
import importlib
import os
import sys
from dataclasses import dataclass
from typing import Callable, Optional

import socketio

from socketio_kit.config import ConfigError, Settings
from socketio_kit.config.settings import DEFAULT_APP
from socketio_kit.server import Server


@dataclass
class Application:
    """What APP named: the kit server, and the WSGI app (if any) that serves
    the application's own HTTP routes."""
    sio: Server
    http: Optional[Callable]


def _import(spec: str, app_path: Optional[str]):
    module_name, _, attr = spec.partition(':')
    attr = attr or 'app'
    if not module_name or not all(part.isidentifier() for part in
                                  module_name.split('.') + attr.split('.')):
        raise ConfigError(f'APP={spec!r} is not MODULE:ATTRIBUTE; set it like '
                          f'APP=myapp:sio (the module myapp.py, its variable sio).')
    if app_path:
        if not os.path.isdir(app_path):
            raise ConfigError(f'APP_PATH={app_path!r} is not a directory; set it to the '
                              f'directory that holds {module_name}.')
        sys.path.insert(0, os.path.abspath(app_path))
    try:
        obj = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name) and spec == DEFAULT_APP:
            raise ConfigError(f'APP is not set, and the demo contract ({DEFAULT_APP}) is not '
                              f'here to serve; set APP=module:attr to your application '
                              f'(and APP_PATH to its directory).') from None
        if exc.name and module_name.startswith(exc.name):
            raise ConfigError(f'APP={spec}: no module named {module_name!r} on the path; '
                              f'set APP_PATH to the directory that holds it.') from None
        raise
    for part in attr.split('.'):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f'APP={spec}: module {module_name} has no {attr!r}; '
                              f'name the variable that holds your server or app.') from None
    return obj


def _server_of(obj):
    """The Socket.IO server an APP object is or wraps, or None."""
    if isinstance(obj, socketio.Server):
        return obj
    wrapped = getattr(obj, 'wsgi_app', None)      # Flask: app.wsgi_app = WSGIApp(...)
    for candidate in (obj, wrapped):
        if isinstance(candidate, socketio.WSGIApp):
            return candidate.engineio_app
    return None


def load_application(settings: Settings) -> Application:
    """Import APP and check it is something the kit can serve."""
    spec = settings.app
    obj = _import(spec, settings.app_path)
    sio = _server_of(obj)
    if sio is None:
        raise ConfigError(f'APP={spec} is a {type(obj).__name__}, not a socketio_kit.Server '
                          f'or a WSGI app wrapping one (socketio.WSGIApp(sio, app)).')
    if not isinstance(sio, Server):
        raise ConfigError(f'APP={spec} holds a plain socketio.Server; the kit needs its '
                          f'drop-in: change `import socketio` to `import socketio_kit as '
                          f'socketio` (or build it with socketio_kit.Server(...)).')
    if obj is not sio:
        wsgi = obj if isinstance(obj, socketio.WSGIApp) else obj.wsgi_app
        path = '/' + wsgi.engineio_path.strip('/')
        if path != settings.protocol.socketio_path:
            raise ConfigError(f'APP={spec} serves Socket.IO on {path} but SOCKETIO_PATH='
                              f'{settings.protocol.socketio_path}; set SOCKETIO_PATH={path} '
                              f'(nginx and the clients follow it).')
    return Application(sio=sio, http=None if obj is sio else obj)
