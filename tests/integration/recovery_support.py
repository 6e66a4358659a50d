"""Helpers of the recovery tests: the real socket.io-client driven over
stdin (tests/node/recovery.mjs), python senders with sequence numbers, and
the per-sender accounting (missed, duplicated, out of order)."""
import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, List

from tests.support import ALLOWED_ORIGIN, Client

ROOT = Path(__file__).resolve().parents[2]
NODE_SCRIPT = ROOT / 'tests' / 'node' / 'recovery.mjs'


class NodeClients:
    """COUNT socket.io-clients in one node process."""

    def __init__(self, url: str, count: int, room: str):
        self.proc = subprocess.Popen(
            ['node', str(NODE_SCRIPT), url, ALLOWED_ORIGIN, str(count), room],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + '\n')
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f'node exited ({self.proc.poll()}) after {command!r}'
        return json.loads(line)

    def wait(self, ready, timeout: float = 20.0) -> dict:
        """Poll `state` until ready(state) is true."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.ask('state')
            if ready(state):
                return state
            assert time.monotonic() < deadline, f'never ready: {state}'
            time.sleep(0.2)

    def wait_ready(self, timeout: float = 20.0) -> dict:
        return self.wait(lambda s: s['ready'], timeout)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('exit\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=5)


def busiest(state: dict):
    """(the instance with the most clients, {instance: client indices})
    of a NodeClients `state`."""
    spread: Dict[str, List[int]] = {}
    for client in state['clients']:
        spread.setdefault(client['instance'], []).append(client['i'])
    return max(spread, key=lambda name: len(spread[name])), spread


class Sender(threading.Thread):
    """A python client on one instance that broadcasts {s, q} to room at
    rate msgs/s until stopped; `sent` counts what was acked."""

    def __init__(self, url: str, name: str, room: str, rate: float):
        super().__init__(daemon=True)
        self.client = Client(url).connect()
        # A client may broadcast only into a room it joined (socketio_kit/policy/guard.py).
        ack = self.client.call('join', {'room': room})
        assert ack['ok'], ack
        self.name, self.room, self.interval = name, room, 1.0 / rate
        self.sent = 0
        self.stop_at = None
        self.errors: List[str] = []
        self.sent_at: List[float] = []

    @classmethod
    def away_from(cls, url: str, avoid: str, *args, **kwargs) -> 'Sender':
        """A Sender through a balancer, on any instance but `avoid`
        (bounded: 30 tries)."""
        for _ in range(30):
            sender = cls(url, *args, **kwargs)
            if sender.client.instance != avoid:
                return sender
            sender.client.close()
        raise AssertionError(f'30 connections through {url}, all on {avoid}')

    def run(self):
        next_at = time.monotonic()
        limit = time.monotonic() + 120          # bounded, whatever happens
        while (self.stop_at is None or time.monotonic() < self.stop_at) \
                and time.monotonic() < limit:
            data = {'s': self.name, 'q': self.sent}
            try:
                ack = self.call(data)
            except Exception as exc:  # noqa: BLE001 - recorded, asserted on
                self.errors.append(repr(exc))
                break
            if not ack.get('ok'):
                self.errors.append(str(ack))
                break
            self.sent_at.append(time.time())
            self.sent += 1
            next_at += self.interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    def call(self, data):
        return self.client.call('broadcast', {'room': self.room, 'data': data})

    def finish(self):
        self.stop_at = time.monotonic()
        self.join(timeout=10)
        self.client.close()


class EmitterSender(Sender):
    """Like Sender, but a backend process: the kit's write-only emitter
    (socketio_kit.cluster.streams.StreamsManager) adds to the stream, no instance involved."""

    def __init__(self, redis_url: str, name: str, room: str, rate: float):
        threading.Thread.__init__(self, daemon=True)
        from socketio_kit.cluster.streams import StreamsManager
        self.emitter = StreamsManager(redis_url, write_only=True)
        self.client = None
        self.name, self.room, self.interval = name, room, 1.0 / rate
        self.sent, self.stop_at, self.errors, self.sent_at = 0, None, [], []

    def call(self, data):
        self.emitter.emit('message', {'room': self.room, 'data': data, 'from': 'emitter'},
                          room=self.room)
        return {'ok': True}

    def finish(self):
        self.stop_at = time.monotonic()
        self.join(timeout=10)


def accounting(report: dict, sent: Dict[str, int]) -> Dict[str, int]:
    """missed / duplicated / out_of_order over every client and sender."""
    totals = {'missed': 0, 'duplicated': 0, 'out_of_order': 0, 'delivered': 0}
    for client in report['clients']:
        for sender, count in sent.items():
            seqs = client['seqs'].get(sender, [])
            totals['delivered'] += len(seqs)
            totals['duplicated'] += len(seqs) - len(set(seqs))
            totals['missed'] += len(set(range(count)) - set(seqs))
            totals['out_of_order'] += sum(1 for a, b in zip(seqs, seqs[1:]) if b < a)
            if len(seqs) != len(set(seqs)) or len(set(range(count)) - set(seqs)):
                totals.setdefault('clients', []).append({
                    'i': client['i'], 'sender': sender, 'seqs': seqs,
                    'connects': client['connects'], 'instances': client['instances']})
    return totals
