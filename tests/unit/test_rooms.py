"""Room admission (socketio_kit/policy/rooms.py) on the kit's room index
(socketio_kit/cluster/rooms.py), over python-socketio's own Manager."""
from socketio_kit.cluster.rooms import RoomIndex
from socketio_kit.config import load_settings
from socketio_kit.policy.auth import Authenticator
from socketio_kit.policy.rooms import RoomAdmission


def _connected(manager, *sids):
    for n, sid in enumerate(sids):
        manager.basic_enter_room(sid, '/', None, eio_sid=f'e{n}')
        manager.basic_enter_room(sid, '/', sid, eio_sid=f'e{n}')


def _admission(**env):
    security = load_settings({'INSTANCE_NAME': 'a1', **env}).security
    return RoomAdmission(security, Authenticator(security))


def test_the_index_follows_enter_leave_close_and_disconnect():
    manager = RoomIndex()
    _connected(manager, 'a1.' + 'x' * 20, 'a1.' + 'y' * 20)
    x, y = 'a1.' + 'x' * 20, 'a1.' + 'y' * 20
    for room in ('r1', 'r2', 'r3'):
        manager.basic_enter_room(x, '/', room)
    manager.basic_enter_room(y, '/', 'r1')
    assert set(manager.joined_rooms(x, '/')) == {'r1', 'r2', 'r3'}
    assert sorted(manager.get_rooms(x, '/')) == sorted([x, 'r1', 'r2', 'r3'])
    manager.basic_leave_room(x, '/', 'r2')
    manager.basic_close_room('r1', '/')
    assert set(manager.joined_rooms(x, '/')) == {'r3'}
    assert not manager.joined_rooms(y, '/') and (('/', y) not in manager.sid_rooms)
    manager.basic_disconnect(x, '/')
    assert manager.get_rooms(x, '/') == [] and not manager.sid_rooms


def test_admission_counts_the_rooms_the_manager_holds():
    manager, admission = RoomIndex(), _admission(MAX_ROOMS_PER_CLIENT='2')
    sid = 'a1.' + 'z' * 20
    _connected(manager, sid)
    assert admission.refusal(manager, sid, '/', 'r1', None) is None
    manager.basic_enter_room(sid, '/', 'r1')     # however it got there (recovery too)
    manager.basic_enter_room(sid, '/', 'r2')
    assert 'MAX_ROOMS_PER_CLIENT' in admission.refusal(manager, sid, '/', 'r3', None)
    assert admission.refusal(manager, sid, '/', 'r2', None) is None     # already in it
    assert 'session ids' in admission.refusal(manager, sid, '/', 'b2.' + 'q' * 20, None)
    assert admission.refusal(manager, sid, '/', '', None)


def test_admission_applies_the_tokens_rooms_claim():
    admission = _admission(AUTH_MODE='jwt', JWT_SECRET='s' * 40)
    manager, sid = RoomIndex(), 'a1.' + 'w' * 20
    _connected(manager, sid)
    claims = {'rooms': ['team-*']}
    assert admission.refusal(manager, sid, '/', 'team-a', claims) is None
    assert 'not authorized' in admission.refusal(manager, sid, '/', 'other', claims)
    assert 'not authorized' in admission.refusal(manager, sid, '/', 'team-a', None)
