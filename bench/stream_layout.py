"""One Redis stream or K streams sharded by a hash of the room: which layout
the kit's Redis Streams manager should use, measured (issue 9, bench/NOTES.md).

Its own redis-server (free loopback port, temp dir, no persistence); per layout K:
1. write and fan-in: P producers XADD, pipelined and paced, entries like
   socketio_kit/cluster/streams.py's (the `broadcast` emit as JSON in field `m`, MAXLEN ~
   STREAM_MAXLEN/K, streams prefilled to it) over 1000 rooms; R readers (the
   instances) each read all K streams with one XREAD BLOCK, decode every entry,
   XTRIM MINID ~ every 5 s. Reported: entries/s written and read, Redis CPU,
   reader lag, per-sender order, duplicates, and each process's own CPU (one
   over 90% of a core makes the run invalid: the generator was the limit).
2. recovery replay of a client in one room away G s: one stream, app/replay.missed
   (XRANGE from its offset, filter by room); K streams, the same on the shards
   of its room and its sid, merged, one offset valid in every shard (best case).
"""
import argparse
import contextlib
import heapq
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path

import redis

from native.processes import stop_child
from socketio_kit.recovery.replay import missed, parse_offset

KEY = 'socketio:stream'
ROOMS = 1000
MAXLEN, MAX_AGE = 100_000, 600      # the kit's STREAM_MAXLEN, STREAM_MAX_AGE defaults
READ_COUNT, BLOCK_MS = 1000, 200    # socketio_kit/cluster/streams.py reads 1000 per XREAD
DRAIN = 1.0                         # seconds readers read on after the producers stop


def shard(name: str, k: int) -> str:
    """The stream a room (or sid) would go to with k shards."""
    return KEY if k == 1 else f'{KEY}:{zlib.crc32(name.encode()) % k}'


def message(room: str, sender: int, seq: int, host: str) -> str:
    """What StreamsManager XADDs for the kit's `broadcast` event."""
    data = {'room': room, 'data': {'s': sender, 'q': seq, 't': time.time()}, 'from': 'app1'}
    return json.dumps({'method': 'emit', 'event': 'message', 'data': [data], 'binary': False,
                       'namespace': '/', 'room': room, 'skip_sid': None, 'callback': None,
                       'host_id': host})


def proc_cpu(pid: int) -> float:
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def start_redis(tmp: str):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(['redis-server', '--bind', '127.0.0.1', '--port', str(port),
                             '--save', '', '--appendonly', 'no', '--dir', tmp,
                             '--logfile', os.path.join(tmp, 'redis.log')])
    return proc, port


def producer(port, k, idx, rate, seconds, start_at, out):
    r, rng, host = redis.Redis(port=port), random.Random(idx), uuid.uuid4().hex
    maxlen, sent = MAXLEN // k, 0
    time.sleep(max(0.0, start_at - time.monotonic()))
    c0, t0 = sum(os.times()[:2]), time.monotonic()
    while (elapsed := time.monotonic() - t0) < seconds:
        due = min(int(elapsed * rate) + 1, int(rate * seconds)) - sent
        if due > 0:
            pipe = r.pipeline(transaction=False)
            for _ in range(due):
                room = f'room-{rng.randrange(ROOMS)}'
                pipe.xadd(shard(room, k), {'m': message(room, idx, sent, host)},
                          maxlen=maxlen, approximate=True)
                sent += 1
            pipe.execute()
        time.sleep(0.005)
    wall = time.monotonic() - t0
    out.put(('p', idx, {'sent': sent, 'cpu': (sum(os.times()[:2]) - c0) / wall}))


def reader(port, k, idx, start_at, until, out):
    r = redis.Redis(port=port, socket_timeout=5)
    names = [KEY] if k == 1 else [f'{KEY}:{i}' for i in range(k)]
    last = {s: (r.xrevrange(s, count=1) or [(b'0-0',)])[0][0].decode() for s in names}
    lags, seen, top = [], {}, {}
    read = dup = ooo = 0
    next_trim = busy_until = 0.0
    time.sleep(max(0.0, start_at - time.monotonic()))
    c0 = sum(os.times()[:2])
    while (now := time.monotonic()) < until:
        if now >= next_trim:    # the listener's age limit (socketio_kit/cluster/streams.py _trim)
            floor = int((time.time() - MAX_AGE) * 1000)
            for s in last:
                r.xtrim(s, minid=f'{floor}-0', approximate=True)
            next_trim = now + 5
        reply = r.xread(last, count=READ_COUNT, block=BLOCK_MS)
        now_ms = time.time() * 1000
        busy_until = time.monotonic() if reply else busy_until
        for name, entries in reply or ():
            for entry_id, fields in entries:
                entry_id = entry_id.decode()
                last[name.decode()] = entry_id
                d = json.loads(fields[b'm'])['data'][0]['data']
                lags.append(now_ms - int(entry_id.split('-')[0]))
                got = seen.setdefault(d['s'], set())
                dup += d['q'] in got
                got.add(d['q'])
                ooo += d['q'] < top.get(d['s'], -1)     # per-sender order broken
                top[d['s']] = max(top.get(d['s'], -1), d['q'])
                read += 1
    lags = sorted(lags) or [0.0]
    # CPU while it had entries to read: its busy fraction of one core.
    out.put(('r', idx, {'read': read, 'unique': sum(map(len, seen.values())), 'dup': dup,
                        'out_of_order': ooo,
                        'cpu': (sum(os.times()[:2]) - c0) / max(0.5, busy_until - start_at),
                        'lag': [round(lags[min(len(lags) - 1, int(q * len(lags)))], 1)
                                for q in (0.5, 0.99, 1.0)]}))


def fill(client, k, n, rate=None):
    """n entries over ROOMS rooms in k streams. Without rate: streams at their
    MAXLEN bound, as in a running kit, so that XADD trims. With rate: n/rate
    seconds of traffic ending now, ids given from one sequence, so one offset
    means one instant in every shard (the best case for sharding)."""
    client.flushall()
    end_ms, rng, host = int(time.time() * 1000), random.Random(7), uuid.uuid4().hex
    for first in range(0, n, 1000):
        pipe = client.pipeline(transaction=False)
        for i in range(first, min(n, first + 1000)):
            room = f'room-{rng.randrange(ROOMS)}'
            at = {'id': f'{end_ms - (n - i) * 1000 // rate}-{i}'} if rate else \
                {'maxlen': MAXLEN // k, 'approximate': True}
            pipe.xadd(shard(room, k), {'m': message(room, 99, i, host)}, **at)
        pipe.execute()
    return end_ms


def throughput(args, port, redis_pid, k, rate):
    ctx, out = mp.get_context('fork'), mp.get_context('fork').Queue()
    start_at = time.monotonic() + 1.0
    until = start_at + args.seconds + DRAIN
    procs = [ctx.Process(target=reader, args=(port, k, i, start_at, until, out))
             for i in range(args.readers)]
    procs += [ctx.Process(target=producer, args=(port, k, i, rate / args.producers,
                                                 args.seconds, start_at, out))
              for i in range(args.producers)]
    for p in procs:
        p.start()
    time.sleep(max(0.0, start_at - time.monotonic()))
    c0 = proc_cpu(redis_pid)
    time.sleep(max(0.0, until - time.monotonic()))
    redis_s = proc_cpu(redis_pid) - c0
    got = [out.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(10)
    prods = [v for kind, _, v in got if kind == 'p']
    reads = [v for kind, _, v in got if kind == 'r']
    written = sum(p['sent'] for p in prods)
    why = [f'{kind} {i} at {v["cpu"]:.0%} of a core' for kind, i, v in got if v['cpu'] > 0.9]
    why += ['producers wrote under 95% of the target'] * (written < 0.95 * rate * args.seconds)
    why += ['a reader missed entries'] * any(r['unique'] < written for r in reads)
    return {'layout': k, 'target_per_s': rate, 'written_per_s': round(written / args.seconds),
            'read_per_s_per_reader': round(min(r['read'] for r in reads) / args.seconds),
            'redis_cpu': round(redis_s / args.seconds, 3),     # per second of writing
            'redis_us_per_entry': round(redis_s / written * 1e6, 1) if written else None,
            'producer_cpu_max': round(max(p['cpu'] for p in prods), 2),
            'reader_cpu_max': round(max(r['cpu'] for r in reads), 2),
            **{f'lag_ms_{q}': max(r['lag'][i] for r in reads)
               for i, q in enumerate(('p50', 'p99', 'max'))},
            'missing': sum(written - r['unique'] for r in reads),
            'duplicated': sum(r['dup'] for r in reads),
            'out_of_order': sum(r['out_of_order'] for r in reads),
            'valid': not why, 'invalid_because': why}


class Counting(redis.Redis):
    """A Redis client that counts the entries XRANGE returns."""
    read = 0

    def xrange(self, *args, **kwargs):
        entries = super().xrange(*args, **kwargs)
        self.read += len(entries)
        return entries


def replay(args, client, k, rate):
    end_ms = fill(client, k, rate * max(args.gaps), rate)
    rooms, sid = ['room-7'], 'Xk3pQ0aZ9bYc'
    rows = []
    for gap in args.gaps:
        offset = f'{end_ms - gap * 1000}-0'
        needed = sorted({shard(name, k) for name in [*rooms, sid]})
        times, got = [], []
        for _ in range(args.repeat):
            client.read, t0 = 0, time.perf_counter()
            parts = [missed(client, s, '/', sid, rooms, offset) for s in needed]
            got = list(heapq.merge(*parts, key=lambda e: parse_offset(e[0])))
            times.append((time.perf_counter() - t0) * 1000)
        rows.append({'layout': k, 'rate_per_s': rate, 'away_s': gap, 'in_stream': rate * gap,
                     'streams_read': len(needed), 'entries_read': client.read,
                     'replayed': len(got), 'ms_median': round(statistics.median(times), 2),
                     'ms_min': round(min(times), 2)})
    return rows


def numbers(text):
    return [int(x) for x in text.split(',') if x]


def parse_args():
    ap = argparse.ArgumentParser(prog='python -m bench.stream_layout', description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add = ap.add_argument
    add('--layouts', type=numbers, default=[1, 2, 4, 8], help='K streams (1: the kit today)')
    add('--rates', type=numbers, default=[2000, 10000, 30000], help='entries/s written in all')
    add('--seconds', type=float, default=4, help='seconds of writing per run')
    add('--producers', type=int, default=2)
    add('--readers', type=int, default=3, help='instances, each reading every stream')
    add('--prefill', type=int, default=MAXLEN, help='entries in the streams before a layout')
    add('--replay-rates', type=numbers, default=[500, 5000], help='entries/s of the history')
    add('--gaps', type=numbers, default=[1, 10], help='seconds the replayed client was away')
    add('--repeat', type=int, default=5, help='replays per case (median reported)')
    add('--out', default='bench/results/streams/layout.json')
    return ap.parse_args()


def machine():
    return {'nproc': os.cpu_count(), 'loadavg': [round(x, 2) for x in os.getloadavg()],
            'platform': platform.platform(), 'python': platform.python_version(),
            'redis': subprocess.run(['redis-server', '--version'], capture_output=True,
                                    text=True).stdout.strip()}


def table(rows, cols):
    print('\n' + ' | '.join(cols))
    for row in rows:
        print(' | '.join(str(row[c]) for c in cols))


def main():
    args = parse_args()
    result = {'command': 'python -m bench.stream_layout ' + ' '.join(sys.argv[1:]),
              'date': time.strftime('%Y-%m-%d %H:%M:%S'), 'machine_before': machine(),
              'settings': {k: v for k, v in vars(args).items() if k != 'out'},
              'throughput': [], 'replay': []}
    tmp = tempfile.mkdtemp(prefix='stream-layout-')
    proc, port = start_redis(tmp)
    client = Counting(port=port)
    try:
        for _ in range(100):
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    break
            time.sleep(0.05)
        for k in args.layouts:
            fill(client, k, args.prefill)
            for rate in args.rates:
                row = throughput(args, port, proc.pid, k, rate)
                print(json.dumps(row), flush=True)
                result['throughput'].append(row)
        for rate in args.replay_rates:
            for k in args.layouts:
                result['replay'] += replay(args, client, k, rate)
    finally:
        stop_child(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    result['machine_after'] = machine()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + '\n')
    table(result['throughput'], ['layout', 'target_per_s', 'written_per_s',
                                 'read_per_s_per_reader', 'redis_cpu', 'redis_us_per_entry',
                                 'lag_ms_p50', 'lag_ms_p99', 'producer_cpu_max',
                                 'reader_cpu_max', 'out_of_order', 'valid'])
    table(result['replay'], ['layout', 'rate_per_s', 'away_s', 'streams_read', 'entries_read',
                             'replayed', 'ms_median'])


if __name__ == '__main__':
    main()
