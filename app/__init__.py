"""The Socket.IO service: one python-socketio Server per gunicorn worker."""
