"""The cluster: the client manager on one Redis stream (streams.py), the stream
entries' format (entries.py), the outbox for Redis outages, deduplication, the
local fan-out that encodes a broadcast once, and the one-instance cluster task
(lease.py)."""
