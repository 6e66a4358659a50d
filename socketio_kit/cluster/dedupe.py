"""Each emit once, even when the stream holds it twice.

An XADD whose reply is lost (Redis killed or timing out mid-command) goes to
the outbox and is written again once Redis answers, and a pipeline that
failed halfway is written again whole: the stream may then hold an emit
twice. Every emit carries its instance's host_id and a serial number `n`;
readers (live delivery and replays) drop what they have seen. The copies of
one emit are close together in the stream (the outbox is written oldest
first, before any newer emit of that instance), so a window of recent serials
per instance is enough.
"""
from collections import OrderedDict, deque

WINDOW = 4096        # serials remembered per instance
INSTANCES = 64       # instances remembered (restarts bring new host_ids)


class SeenEmits:
    """The (host_id, n) of the emits read lately."""

    def __init__(self):
        self.hosts = OrderedDict()   # host_id -> (deque of n, set of n)

    def first(self, message: dict) -> bool:
        """Whether this emit is read for the first time (messages without a
        serial, from older instances, always are)."""
        host, serial = message.get('host_id'), message.get('n')
        if host is None or serial is None:
            return True
        if host not in self.hosts:
            if len(self.hosts) >= INSTANCES:
                self.hosts.popitem(last=False)
            self.hosts[host] = (deque(), set())
        self.hosts.move_to_end(host)
        order, seen = self.hosts[host]
        if serial in seen:
            return False
        order.append(serial)
        seen.add(serial)
        if len(order) > WINDOW:
            seen.discard(order.popleft())
        return True
