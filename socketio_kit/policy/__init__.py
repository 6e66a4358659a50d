"""What the runtime enforces around the application's handlers: strict JSON,
input limits and rate limits (guard.py, limits.py), JWT auth (auth.py), room
admission (rooms.py) and the session binding (binding.py)."""
