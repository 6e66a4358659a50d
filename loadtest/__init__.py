"""Load generator for a Socket.IO cluster that speaks the kit's demo contract.

It behaves like browsers (WebSocket with permessage-deflate offered) and
measures what matters for a cluster: broadcast delivery and latency across
instances, reconnect after an instance dies, memory per connection, and what
one client that stops reading does to the others. It says when its own
numbers cannot be trusted (wrong transport, saturated CPU, a late event
loop), and `selftest` measures its own ceiling.
"""
