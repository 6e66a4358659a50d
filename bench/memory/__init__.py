"""Where the bytes of an idle WebSocket client go, on one instance.

Starts a private redis-server and ONE instance on free loopback ports, holds N
idle WebSocket Socket.IO clients on it (raw asyncio clients: HTTP upgrade, the
Engine.IO open packet, `40`, `welcome`, and a `3` for every `2`), and reports:

1. RSS of the gunicorn worker before and after, per connection. The instance
   runs with the real start command, `app/start`, nothing added.
2. A breakdown: the same again under `bench/memory_gunicorn.py` (the kit's
   gunicorn config plus a SIGUSR2 dump), with tracemalloc on in the worker.
   Allocations that survive are grouped by the innermost frame that says whose
   they are (environ/request, greenlets, engineio session, WebSocket
   connection, socketio session), and a gc census counts objects per
   connection. RSS growth minus traced growth estimates what tracemalloc cannot
   see: greenlet C-stack copies are traced (PyMem), but CPython 3.11 frame
   data-stack chunks of each greenlet (and allocator slack) are not.

Both for WORKER_CLASS=eventlet and gevent, one run at a time.

    python -m bench.memory                       # 10,000 clients, both classes
    python -m bench.memory --clients 2000 --worker-class gevent
"""
