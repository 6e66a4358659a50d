"""selftest: the generator's own ceiling, with no cluster in the way.

A separate process (loadtest/source.py) accepts the clients on a free
loopback port and writes ready-made broadcast frames to all of them as fast
as they are read. One generator process receives them through the same
client and bookkeeping as a real run. It prints the messages per second it
received, the fraction of a core it used, and their quotient: messages per
second of its CPU, which is what one core of generator takes. It fails (exit
1) when that is under --min-rate. The quotient, not the raw rate, is judged:
when the source (or another tenant of the machine) is the slower side, the
generator idles part of the time and the raw rate says nothing about it.
The source accepts permessage-deflate when the clients offer it (the
default), so `--compression off` measures the plain ceiling.
"""
import contextlib
import dataclasses
import json
import socket
import subprocess
import sys
import threading
import time

from loadtest.environment import ROOT
from loadtest.pool import RunError
from loadtest.run import Run
from loadtest.stats import Histogram

NEEDS_CONTROLLER = False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def prepared(r: Run):
    """Start the source; point the run at it with one process and no senders."""
    port = free_port()
    source = subprocess.Popen(
        [sys.executable, '-m', 'loadtest.source', str(port), '--deflate',
         '--senders', str(r.cfg.senders), '--room', r.cfg.room],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        if source.stdout.readline().strip() != 'ready':
            raise RunError('the selftest source did not start')
        r.cfg = dataclasses.replace(r.cfg, url=f'http://127.0.0.1:{port}', procs=1, rate=0)
        r.result['config'].update(url=r.cfg.url, procs=1, rate=0)
        r.source = source
        yield
    finally:
        if source.stdin and not source.stdin.closed:
            source.stdin.close()
        try:
            source.wait(10)
        except subprocess.TimeoutExpired:
            source.kill()   # our own child, by its handle
            source.wait(5)


def run(r: Run):
    cfg = r.cfg
    replies = r.connect(join=True, senders=0)
    blast = {}

    def go(t0):
        def talk():
            time.sleep(max(0.0, t0 - time.time()))
            r.source.stdin.write(f'go {cfg.duration}\n')
            r.source.stdin.flush()
            blast.update(json.loads(r.source.stdout.readline()))
        blast['thread'] = threading.Thread(target=talk, daemon=True)
        blast['thread'].start()

    t0, ran = r.window(replies, at_start=go, check=False)
    blast.pop('thread').join(cfg.duration + 30)
    if 'sent' not in blast:
        raise RunError('the selftest source never reported what it sent')
    senders = {sid: {'sent': n, 'unacked': [], 'skipped': 0, 'refused': 0, 'late': 0,
                     'ack': Histogram().to_dict()} for sid, n in blast['sent'].items()}
    r.tally(t0, senders)
    (worker,) = ran
    # Recorded, not checked: a saturated generator is what this measures.
    r.result['generator_cpu'] = {'send window': [round(worker['send_cpu'], 3)]}
    rate = worker['received_in_window'] / worker['window_seconds']
    per_cpu = rate / worker['send_cpu'] if worker['send_cpu'] else 0.0
    r.result['selftest'] = {
        'messages_per_second': round(rate), 'cpu_fraction': round(worker['send_cpu'], 3),
        # Under a full core the source, not the generator, set the pace: what
        # one core of the generator would take, at the cost measured.
        'messages_per_cpu_second': round(per_cpu),
        'window_seconds': round(worker['window_seconds'], 3),
        'clients': r.result['connect']['connected'],
        'compression_negotiated': r.result['compression']['negotiated'],
        'source': {k: v for k, v in blast.items() if k != 'sent'},
        'min_rate': cfg.min_rate, 'passed': per_cpu >= cfg.min_rate}
    if per_cpu < cfg.min_rate:
        r.result['failed'] = (f'one core of generator takes {per_cpu:,.0f} messages/s, '
                              f'under --min-rate {cfg.min_rate:,.0f}')
