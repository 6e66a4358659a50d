"""Connection-state recovery across instances: the server's hooks (hooks.py),
the sessions in Redis (sessions.py, session_data.py) and the replay of what a
session missed (replay.py)."""
from socketio_kit.recovery.hooks import Recovery

__all__ = ['Recovery']
