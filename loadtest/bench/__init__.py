"""`python -m loadtest.bench` (make bench): the standard runs, written up.

Shape (issue 8): the instances + nginx + Redis + the generator on one machine,
ONE room of --room-clients WebSocket clients, --senders senders, --duration s
per step, the generator offering permessage-deflate like a browser.
Sections, each optional with --only:
- sweep: the room's delivered msg/s stepped up (--delivered), and on past the
  list while every step passes;
- hold: --hold-clients WebSocket clients held; KiB per connection per instance;
- slow: the slow-consumer scenario at --slow-delivered msg/s;
- reconnect: one instance killed, and separately stopped, during a broadcast;
- workers: with --start-native, the sweep again for every other class of
  --worker-class (eventlet vs gevent side by side);
- compose: with --compose-url, the sweep against a running compose cluster.
Every run's JSON (and plots) go to bench/results/, which is committed; the
tables and the machine description go to BENCHMARKS.md.
"""
