"""The hot path: what a generator process does with each broadcast it reads.

Every client counts delivery, duplicates and order per sender (SeqTracker).
The send time, and with it latency, is parsed only on the sampled clients
(every `latency_every`-th client of a process, ClientState.sampled), because
parsing it costs as much again as the counting. The broadcast is not decoded
as JSON: the kit's packets are compact JSON of a known shape,
`42["message",{"room":R,"data":{"s":SENDER,"q":SEQ,"t":TIME},"from":INSTANCE}]`,
so the fields are cut out by position, with a JSON fallback for anything else.
"""
import json
import time
from typing import Dict, Optional

from loadtest.client import Client, Handler
from loadtest.stats import Histogram, SeqTracker

SENDER_MARK = b'"data":{"s":"'
SEQ_MARK = b'","q":'
FROM_MARK = b'"from":"'


def parse_broadcast(data: bytes):
    """(sender, seq, sent_at, from_instance) of a broadcast packet, or None.
    sender and from_instance are bytes."""
    i = data.find(SENDER_MARK)
    if i > 0:
        i += len(SENDER_MARK)
        j = data.find(b'"', i)
        k = j + len(SEQ_MARK)
        if data[j:k] == SEQ_MARK:
            e = data.find(b',"t":', k)
            f = data.find(b'}', e)
            g = data.find(FROM_MARK, f) + len(FROM_MARK)
            try:
                return (data[i:j], int(data[k:e]), float(data[e + 5:f]),
                        data[g:data.find(b'"', g)])
            except ValueError:
                pass
    try:  # not the compact shape: decode it properly
        body = json.loads(data[2:])[1]
        fields = body['data']
        return (str(fields['s']).encode(), int(fields['q']), float(fields['t']),
                str(body.get('from')).encode())
    except (ValueError, TypeError, KeyError, IndexError):
        return None


class Receiver(Handler):
    """Counts what the clients of one process receive; also follows their
    connects and losses for the reconnect scenario."""

    def __init__(self, on_reconnect=None):
        self.on_reconnect = on_reconnect    # called with a client that came back
        self.connected_per_instance: Dict[str, int] = {}
        self.reconnect_failures: Dict[str, int] = {}
        self.run_started: Optional[float] = None
        self.reset()

    def reset(self):
        self.received = self.duplicates = self.out_of_order = 0
        self.same, self.cross = Histogram(), Histogram()
        self.last_recv: Optional[float] = None

    # -- connection events ----------------------------------------------------------
    def on_welcome(self, client: Client, data: dict):
        inst = data.get('instance')
        self.connected_per_instance[inst] = self.connected_per_instance.get(inst, 0) + 1
        if client.connects > 0:  # a reconnect: record it and rejoin the room
            client.state.t_back = time.time()
            client.state.new_instance = inst
            if self.on_reconnect:
                self.on_reconnect(client)

    def on_disconnect(self, client: Client, reason: str):
        inst, state = client.instance, client.state
        self.connected_per_instance[inst] = self.connected_per_instance.get(inst, 1) - 1
        if state.t_lost is None and self.run_started is not None:
            state.t_lost = time.time()
            state.lost_reason = reason
        state.t_back = state.t_recv_again = None

    def on_reconnect_failed(self, client: Client, error: str):
        self.reconnect_failures[error] = self.reconnect_failures.get(error, 0) + 1

    # -- the hot path -------------------------------------------------------------------
    def on_broadcast(self, client: Client, data: bytes):
        state = client.state
        # Inline parse of sender and sequence: the common case, kept short.
        i = data.find(SENDER_MARK) + 13
        j = data.find(b'"', i)
        e = data.find(b',"t":', j)
        if i == 12 or data[j:j + 6] != SEQ_MARK:
            return self._odd(client, data)
        try:
            seq = int(data[j + 6:e])
        except ValueError:
            return self._odd(client, data)
        sender = data[i:j]
        tracker = state.trackers.get(sender)
        if tracker is None:
            tracker = state.trackers[sender] = SeqTracker()
        if seq == tracker.high + 1:
            tracker.high = seq
        else:
            outcome = tracker.add(seq)
            if outcome == 'dup':
                self.duplicates += 1
                return
            if outcome == 'late':
                self.out_of_order += 1
        self.received += 1
        if state.sampled:
            self._sample(client, data, e)
        elif state.t_back is not None and state.t_recv_again is None:
            state.t_recv_again = time.time()

    def _sample(self, client: Client, data: bytes, e: int):
        now = time.time()
        f = data.find(b'}', e)
        g = data.find(FROM_MARK, f) + 8
        try:
            latency = now - float(data[e + 5:f])
        except ValueError:
            return
        origin = data[g:data.find(b'"', g)]
        same = client.instance is not None and origin == client.instance.encode()
        (self.same if same else self.cross).add(latency if latency > 0 else 0.0)
        self.last_recv = now
        state = client.state
        if state.t_back is not None and state.t_recv_again is None:
            state.t_recv_again = now

    def _odd(self, client: Client, data: bytes):
        """A broadcast not in the compact shape: the slow, general path."""
        parsed = parse_broadcast(data)
        if parsed is None:
            client.protocol_errors += 1
            return
        sender, seq, sent_at, origin = parsed
        compact = (b'42["message",{"room":"","data":{"s":"' + sender + b'","q":'
                   + str(seq).encode() + b',"t":' + repr(sent_at).encode()
                   + b'},"from":"' + origin + b'"}]')
        self.on_broadcast(client, compact)
