"""One load-generator process: holds its share of the clients and senders.

The coordinator (runner.py) drives every worker through the same phases over
a pipe: connect -> run -> tally -> (probe) -> close. A worker measures its own
CPU time so the coordinator can tell a saturated generator from a slow
cluster.
"""
import asyncio
import resource
import time
from typing import Dict, List, Optional

import aiohttp

from loadtest.client import Client, ClientConfig, ConnectError, Handler
from loadtest.stats import Histogram, SeqTracker

SAMPLE_EVERY = 0.1   # seconds between timeline samples
# Progress slots per worker in the shared array.
P_CONNECTED, P_FAILED, P_RECEIVED, P_SENT, P_CPU, P_RECONNECTED = range(6)
PROGRESS_SLOTS = 6


def raise_nofile_limit() -> int:
    """Raise this process's open-file limit to its hard limit; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


class CpuMeter:
    """CPU used by this process over a window, as a fraction of one core."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.cpu0, self.wall0 = time.process_time(), time.monotonic()

    def fraction(self) -> float:
        wall = time.monotonic() - self.wall0
        return (time.process_time() - self.cpu0) / wall if wall > 0 else 0.0


class Sender:
    def __init__(self, sender_id: str, client: Client):
        self.id, self.client = sender_id, client
        self.sent = 0
        self.unacked = set()
        self.skipped = 0      # send times that found the client disconnected
        self.refused = 0      # acks with ok: false
        self.late = 0         # sends more than 1 s behind schedule
        self.ack = Histogram()


class Worker(Handler):
    def __init__(self, index: int, cfg: dict, conn, progress):
        self.index, self.cfg, self.conn, self.progress = index, cfg, conn, progress
        self.base = index * PROGRESS_SLOTS
        self.client_config = ClientConfig(
            url=cfg['url'], path=cfg['path'], origin=cfg['origin'],
            transport=cfg['transport'], connect_timeout=cfg['connect_timeout'],
            reconnect=cfg['scenario'] == 'reconnect',
            reconnect_delay=cfg['reconnect_delay'],
            reconnect_delay_max=cfg['reconnect_delay_max'])
        self.clients: List[Client] = []
        self.senders: List[Sender] = []
        self.connect_hist = Histogram()
        self.errors: Dict[str, int] = {}
        self.join_failures = 0
        self.same, self.cross = Histogram(), Histogram()
        self.received = self.duplicates = self.out_of_order = 0
        self.first_recv = self.last_recv = None
        self.connected_per_instance: Dict[str, int] = {}
        self.timeline: List[list] = []
        self.reconnect_failures: Dict[str, int] = {}
        self.cpu_peak = 0.0
        self.loop_lag = Histogram()
        self.tasks = set()
        self.run_started: Optional[float] = None

    # -- Handler callbacks (hot path) -------------------------------------------
    def on_welcome(self, client, data):
        inst = data.get('instance')
        self.connected_per_instance[inst] = self.connected_per_instance.get(inst, 0) + 1
        if client.connects > 0:  # a reconnect: record it and rejoin the room
            client.t_back = time.time()
            client.new_instance = inst
            self.progress[self.base + P_RECONNECTED] += 1
            self._spawn(self._join(client, rejoin=True))

    def on_disconnect(self, client, reason):
        inst = client.instance
        self.connected_per_instance[inst] = self.connected_per_instance.get(inst, 1) - 1
        if client.t_lost is None and self.run_started is not None:
            client.t_lost = time.time()
            client.lost_reason = reason
        client.t_back = client.t_recv_again = None

    def on_reconnect_failed(self, client, error):
        self.reconnect_failures[error] = self.reconnect_failures.get(error, 0) + 1

    def on_message(self, client, data):
        now = time.time()
        try:
            body = data['data']
            sender, seq, sent_at = body['s'], body['q'], body['t']
        except (TypeError, KeyError):
            client.protocol_errors += 1
            return
        tracker = client.trackers.get(sender)
        if tracker is None:
            tracker = client.trackers[sender] = SeqTracker()
        outcome = tracker.add(seq)
        if outcome == 'dup':
            self.duplicates += 1
            return
        if outcome == 'late':
            self.out_of_order += 1
        latency = now - sent_at
        (self.same if data.get('from') == client.instance else self.cross).add(
            latency if latency > 0 else 0.0)
        self.received += 1
        if self.first_recv is None:
            self.first_recv = now
        self.last_recv = now
        if client.t_back is not None and client.t_recv_again is None:
            client.t_recv_again = now

    # -- plumbing -------------------------------------------------------------------
    def _spawn(self, coro):
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def _error(self, kind: str):
        self.errors[kind] = self.errors.get(kind, 0) + 1

    async def _sampler(self):
        meter = CpuMeter()
        t0 = time.monotonic()
        for _ in range(int(86400 / SAMPLE_EVERY)):  # bounded: one day
            before = time.monotonic()
            await asyncio.sleep(SAMPLE_EVERY)
            # Oversleep = how late this event loop runs its callbacks; every
            # latency measured here includes it.
            if self.run_started is not None:
                self.loop_lag.add(max(0.0, time.monotonic() - before - SAMPLE_EVERY))
            self.timeline.append([round(time.time(), 2),
                                  dict(self.connected_per_instance)])
            pr, b = self.progress, self.base
            pr[b + P_CONNECTED] = sum(c.connected for c in self.clients) \
                if len(self.clients) < 2000 or len(self.timeline) % 5 == 0 \
                else pr[b + P_CONNECTED]
            pr[b + P_RECEIVED] = self.received
            pr[b + P_SENT] = sum(s.sent for s in self.senders)
            if time.monotonic() - t0 >= 1.0:
                frac = meter.fraction()
                pr[b + P_CPU] = frac
                if self.run_started is not None:
                    self.cpu_peak = max(self.cpu_peak, frac)
                meter.reset()
                t0 = time.monotonic()

    async def _recv(self):
        return await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)

    # -- phases -------------------------------------------------------------------
    async def main(self):
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.cfg['connect_timeout'])
        # No shared cookie jar: each client keeps its own cookies (client.py).
        async with aiohttp.ClientSession(
                connector=connector, timeout=timeout,
                cookie_jar=aiohttp.DummyCookieJar()) as session:
            self.session = session
            sampler = self._spawn(self._sampler())
            try:
                for _ in range(100):  # bounded number of commands
                    command, arg = await self._recv()
                    if command == 'close':
                        await self._close_all()
                        self.conn.send(('closed', {}))
                        return
                    handler = getattr(self, f'cmd_{command}')
                    self.conn.send((command, await handler(**arg)))
            finally:
                sampler.cancel()
                await self._close_all()

    async def _close_all(self):
        clients, self.clients = self.clients, []
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)

    async def _connect_one(self, client: Client, join: bool, sem) -> bool:
        async with sem:
            start = time.monotonic()
            try:
                await client.connect()
            except ConnectError as exc:
                self._error(str(exc))
                self.progress[self.base + P_FAILED] += 1
                return False
            self.connect_hist.add(time.monotonic() - start)
        if join:
            await self._join(client)
        return True

    async def _join(self, client: Client, rejoin: bool = False):
        try:
            ack = await client.call('join', {'room': self.cfg['room']})
            ok = isinstance(ack, dict) and ack.get('ok')
        except (ConnectionError, TimeoutError, ConnectError):
            ok = False
        if not ok:
            self.join_failures += 1
        client.joined = bool(ok)

    def _new_client(self, index: int) -> Client:
        client = Client(self.session, self.client_config, self, index)
        client.trackers = {}
        client.t_lost = client.t_back = client.t_recv_again = None
        client.lost_reason = client.new_instance = client.start_instance = None
        client.joined = False
        return client

    async def cmd_connect(self, clients: int, senders: int, rate: float,
                          join: bool):
        cpu = CpuMeter()
        started = time.time()
        sem = asyncio.Semaphore(self.cfg['connect_concurrency'])
        new = [self._new_client(len(self.clients) + i) for i in range(clients)]
        self.clients.extend(new)
        loop_start = time.monotonic()
        tasks = []
        for i, client in enumerate(new):
            due = loop_start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(self._spawn(self._connect_one(client, join, sem)))
        await asyncio.gather(*tasks, return_exceptions=True)
        elapsed = time.time() - started
        for k, client in enumerate(c for c in new if c.connected):
            if k >= senders:
                break
            self.senders.append(Sender(f'{self.index}.{k}', client))
        return self._connect_report(new, elapsed, cpu.fraction())

    def _connect_report(self, new, elapsed, cpu):
        landed: Dict[str, int] = {}
        transports: Dict[str, int] = {}
        welcome_transports: Dict[str, int] = {}
        upgrade_errors: Dict[str, int] = {}
        for c in new:
            if not c.connected:
                continue
            landed[c.instance] = landed.get(c.instance, 0) + 1
            transports[c.transport] = transports.get(c.transport, 0) + 1
            welcome_transports[c.welcome_transport] = \
                welcome_transports.get(c.welcome_transport, 0) + 1
            if c.upgrade_error:
                upgrade_errors[c.upgrade_error] = upgrade_errors.get(c.upgrade_error, 0) + 1
        return {'attempted': len(new), 'connected': sum(landed.values()),
                'joined': sum(1 for c in new if c.joined),
                'join_failures': self.join_failures,
                'errors': dict(self.errors), 'landed': landed,
                'transports': transports,
                'welcome_transports': welcome_transports,
                'upgrade_errors': upgrade_errors,
                'sender_instances': [s.client.instance for s in self.senders],
                'connect_hist': self.connect_hist.to_dict(),
                'elapsed': elapsed, 'cpu': cpu,
                'nofile': resource.getrlimit(resource.RLIMIT_NOFILE)[0]}

    async def _send_one(self, sender: Sender, seq: int):
        sent_at = time.time()
        payload = {'room': self.cfg['room'],
                   'data': {'s': sender.id, 'q': seq, 't': sent_at}}
        try:
            ack = await sender.client.call('broadcast', payload,
                                           timeout=self.cfg['ack_timeout'])
        except (ConnectionError, TimeoutError, ConnectError, RuntimeError):
            return
        if isinstance(ack, dict) and ack.get('ok'):
            sender.unacked.discard(seq)
            sender.ack.add(time.time() - sent_at)
        else:
            sender.refused += 1

    async def _sender_loop(self, sender: Sender, t0: float, t_end: float,
                           rate: float, offset: float):
        interval = 1.0 / rate
        due = t0 + offset
        for _ in range(int((t_end - t0) * rate) + 2):  # bounded by the schedule
            if due >= t_end:
                break
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1.0:
                sender.late += 1
            if sender.client.connected:
                seq = sender.sent
                sender.sent += 1
                sender.unacked.add(seq)
                self._spawn(self._send_one(sender, seq))
            else:
                sender.skipped += 1
            due += interval

    async def cmd_run(self, t0: float, duration: float, rate_per_sender: float,
                      drain: float, total_senders: int, first_sender: int):
        self.received = self.duplicates = self.out_of_order = 0
        self.same, self.cross = Histogram(), Histogram()
        self.first_recv = self.last_recv = None
        self.loop_lag = Histogram()
        for c in self.clients:
            c.start_instance = c.instance if c.connected else None
        t_end = t0 + duration
        wait = t0 - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self.run_started = time.time()
        cpu = CpuMeter()
        loops = []
        if rate_per_sender > 0:
            for k, sender in enumerate(self.senders):
                # Spread the senders' first sends over one interval.
                offset = (first_sender + k) / total_senders / rate_per_sender
                loops.append(self._spawn(self._sender_loop(
                    sender, t0, t_end, rate_per_sender, offset)))
        await asyncio.gather(*loops, return_exceptions=True)
        # The send window is the schedule, not the loops (a sender whose first
        # slot falls after the end never runs): a tiny window would turn a
        # millisecond of CPU into a false "saturated".
        await asyncio.sleep(max(0.0, t_end - time.time()))
        send_cpu = cpu.fraction()
        send_lag = self.loop_lag.to_dict()
        await asyncio.sleep(max(0.0, t_end + drain - time.time()))
        return {'senders': {s.id: {'sent': s.sent, 'unacked': sorted(s.unacked),
                                   'skipped': s.skipped, 'refused': s.refused,
                                   'late': s.late, 'ack': s.ack.to_dict(),
                                   'instance': s.client.instance}
                            for s in self.senders},
                'cpu': cpu.fraction(), 'send_cpu': send_cpu, 'send_lag': send_lag,
                'cpu_peak': self.cpu_peak}

    async def cmd_tally(self, senders: dict, include_clients: bool):
        unacked = {sid: set(info['unacked']) for sid, info in senders.items()}
        expected_each = sum(info['sent'] - len(unacked[sid])
                            for sid, info in senders.items())
        expected = received = 0
        members = 0
        per_client = []
        missed_unaffected = 0
        for c in self.clients:
            if c.start_instance is None:
                continue  # never in the room: not expected to receive
            members += 1
            got = sum(tr.received_of(senders[sid]['sent'], unacked[sid])
                      for sid, tr in c.trackers.items() if sid in senders)
            expected += expected_each
            received += got
            missed = expected_each - got
            if c.t_lost is not None:
                per_client.append({
                    'start_instance': c.start_instance, 'lost': c.t_lost,
                    'reason': c.lost_reason, 'back': c.t_back,
                    'receiving': c.t_recv_again, 'new_instance': c.new_instance,
                    'connected': c.connected, 'missed': missed})
            else:
                missed_unaffected += missed
        return {'expected': expected, 'received': received, 'members': members,
                'duplicates': self.duplicates, 'out_of_order': self.out_of_order,
                'same': self.same.to_dict(), 'cross': self.cross.to_dict(),
                'first_recv': self.first_recv, 'last_recv': self.last_recv,
                'protocol_errors': sum(c.protocol_errors for c in self.clients),
                'landed_now': _count(c.instance for c in self.clients if c.connected),
                'transports_now': _count(c.transport for c in self.clients
                                         if c.connected),
                'lost_clients': per_client if include_clients else len(per_client),
                'missed_unaffected': missed_unaffected,
                'reconnect_failures': dict(self.reconnect_failures),
                'timeline': self.timeline, 'cpu_peak': self.cpu_peak}

    async def cmd_probe(self, clients: int):
        """Connect fresh clients (no reconnect), say where they landed, close."""
        cfg = ClientConfig(**{**self.client_config.__dict__, 'reconnect': False})
        probes = [Client(self.session, cfg, Handler(), i) for i in range(clients)]
        errors: Dict[str, int] = {}

        async def one(c):
            try:
                await c.connect()
            except ConnectError as exc:
                errors[str(exc)] = errors.get(str(exc), 0) + 1
        await asyncio.gather(*(one(c) for c in probes))
        landed = _count(c.instance for c in probes if c.connected)
        await asyncio.gather(*(c.close() for c in probes), return_exceptions=True)
        return {'landed': landed, 'errors': errors}

    async def cmd_hold(self, seconds: float):
        cpu = CpuMeter()
        await asyncio.sleep(seconds)
        return {'connected': sum(c.connected for c in self.clients),
                'cpu': cpu.fraction()}


def _count(items) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def worker_main(index: int, cfg: dict, conn, progress):
    """Entry point of a generator process (multiprocessing target)."""
    raise_nofile_limit()
    try:
        asyncio.run(Worker(index, cfg, conn, progress).main())
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        conn.close()
