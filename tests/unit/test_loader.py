"""The front door (socketio_kit/loader.py) and socketio_kit.Server's own
refusals: each mistake is one sentence naming what to change."""
import sys

import pytest
import socketio

from socketio_kit.cluster.streams import StreamsManager
from socketio_kit.config import ConfigError, load_settings
from socketio_kit.loader import load_application
from socketio_kit.server import Server

APPS = {
    'kitapp': 'import socketio_kit\nsio = socketio_kit.Server()\n',
    'stockapp': 'import socketio\nsio = socketio.Server()\n',
    'wsgiapp': ('import socketio, socketio_kit\nsio = socketio_kit.Server()\n'
                'app = socketio.WSGIApp(sio, lambda e, s: [])\n'
                'other = socketio.WSGIApp(sio, socketio_path="rt")\nnumber = 7\n'),
}


@pytest.fixture
def app_dir(tmp_path):
    for name, text in APPS.items():
        (tmp_path / f'{name}.py').write_text(text)
    yield tmp_path
    for name in APPS:
        sys.modules.pop(name, None)
    while str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


def _load(app, app_path=None, **env):
    env = {'INSTANCE_NAME': 'u1', 'APP': app, **env}
    if app_path:
        env['APP_PATH'] = str(app_path)
    return load_application(load_settings(env))


def test_a_kit_server_and_a_wsgi_app_wrapping_one_load(app_dir):
    loaded = _load('kitapp:sio', app_dir)
    assert isinstance(loaded.sio, Server) and loaded.http is None
    wrapped = _load('wsgiapp:app', app_dir)
    assert isinstance(wrapped.sio, Server) and isinstance(wrapped.http, socketio.WSGIApp)


@pytest.mark.parametrize('app, why', [
    ('kitapp:sio', 'APP_PATH'),                       # not on the path without it
    ('not a module', 'MODULE:ATTRIBUTE'),
    ('kitapp:missing', "no 'missing'"),
    ('stockapp:sio', 'import socketio_kit as socketio'),
    ('wsgiapp:number', 'is a int'),
    ('wsgiapp:other', 'SOCKETIO_PATH=/rt'),
])
def test_each_mistake_is_one_sentence(app_dir, app, why):
    with pytest.raises(ConfigError, match=why.replace('(', r'\(').replace(')', r'\)')):
        _load(app, app_dir if why != 'APP_PATH' else None)


def test_app_path_must_be_a_directory(tmp_path):
    with pytest.raises(ConfigError, match='APP_PATH=.* is not a directory'):
        _load('x:y', tmp_path / 'nowhere')


def test_the_kits_namespace_cannot_be_replaced():
    sio = Server(settings=load_settings({'INSTANCE_NAME': 'u2'}))
    sio.instrument(auth=False)          # the Admin UI on its own /admin
    with pytest.raises(ValueError, match='/_kit is the kit'):
        sio.on('connect', lambda sid, environ: True, namespace='/_kit')

    class Takeover(socketio.Namespace):
        pass
    with pytest.raises(ValueError, match='/_kit is the kit'):
        sio.register_namespace(Takeover('/_kit'))


def test_arguments_the_kit_decides():
    settings = load_settings({'INSTANCE_NAME': 'u3'})
    with pytest.raises(ConfigError, match='WORKER_CLASS'):
        Server(settings=settings, async_mode='threading')
    sio = Server(settings=settings, async_mode='eventlet', cors_allowed_origins=None,
                 ping_interval=3, logger=True, client_manager=socketio.Manager())
    assert sio.eio.ping_interval == settings.protocol.ping_interval
    # Another manager would carry none of the cap, recovery or room admission.
    assert isinstance(sio.manager, StreamsManager)


def test_an_application_bug_is_its_traceback_not_a_disconnect(caplog):
    sio = Server(settings=load_settings({'INSTANCE_NAME': 'u4'}))

    @sio.event
    def boom(sid, data):
        return {'x': 1}[data]

    @sio.event
    def connect(sid, environ):          # the docs' two-argument connect
        return True

    with caplog.at_level('ERROR', logger='socketio_kit.app'):
        assert sio._trigger_event('boom', '/', 'sid1', 'y') is None
    record, = [r for r in caplog.records if r.name == 'socketio_kit.app']
    assert "'boom'" in record.getMessage() and record.exc_info[0] is KeyError
    # Called without the auth argument, even when the client sent one.
    assert sio._trigger_event('connect', '/', 'sid1', {}, {'token': 'x'}) is True


def test_a_page_of_the_application_itself_is_same_origin(caplog):
    from socketio_kit.server import OriginPolicy
    policy = OriginPolicy(load_settings({'INSTANCE_NAME': 'u5',
                                         'CORS_ALLOWED_ORIGINS': 'http://page.example'}))
    through_nginx = {'wsgi.url_scheme': 'http', 'HTTP_HOST': 'localhost',
                     'HTTP_X_FORWARDED_PROTO': 'https',
                     'HTTP_X_FORWARDED_HOST': 'chat.example:8443'}
    with caplog.at_level('WARNING', logger='socketio_kit'):
        assert policy('https://chat.example:8443', through_nginx)
        assert policy('http://page.example', through_nginx)
        assert not policy(None, through_nginx)              # no Origin: no warning either
        assert not policy('https://evil.example', through_nginx)
        assert not policy('http://chat.example:8443', through_nginx)    # scheme matters
    assert [r.getMessage().split(' refused origin ')[1][:30] for r in caplog.records] == [
        "'https://evil.example': not in", "'http://chat.example:8443': no"]


def test_the_kit_module_is_python_socketio_with_its_own_server():
    """`import socketio_kit as socketio`: one changed line moves an app."""
    import socketio_kit
    assert socketio_kit.Server is Server
    assert socketio_kit.WSGIApp is socketio.WSGIApp
    assert socketio_kit.Namespace is socketio.Namespace
    assert socketio_kit.exceptions.ConnectionRefusedError is \
        socketio.exceptions.ConnectionRefusedError
    with pytest.raises(AttributeError, match='no attribute'):
        socketio_kit.NoSuchThing  # noqa: B018
