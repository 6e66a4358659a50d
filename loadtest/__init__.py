"""Load generator for a Socket.IO cluster that speaks the kit's demo contract.

It measures what matters for a cluster: cross-instance broadcast delivery and
latency, reconnect after an instance dies, and memory per connection, and it
says when its own numbers cannot be trusted (wrong transport, saturated CPU).
"""
