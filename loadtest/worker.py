"""One load-generator process: holds its share of the clients and senders.

The coordinator (pool.py) drives every worker through the same commands over
a pipe: connect -> run -> tally -> (probe, hold) -> close. A worker measures
its own CPU time and event-loop lag so a saturated generator is told apart
from a slow cluster. It runs on uvloop when installed.
"""
import asyncio
import dataclasses
import resource
import time
from typing import Dict, List

import aiohttp

from loadtest.client import Client, ClientConfig, ConnectError
from loadtest.config import Config
from loadtest.meter import P_FAILED, P_RECONNECTED, PROGRESS_SLOTS, CpuMeter, Sampler
from loadtest.receiver import Receiver
from loadtest.sending import send_window
from loadtest.state import ClientState, Sender
from loadtest.stats import Histogram
from loadtest.tally import connect_report, tally


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


# Scenarios whose clients reconnect (and recover) when they lose the server.


class Worker:
    def __init__(self, index: int, cfg: Config, conn, progress):
        self.index, self.cfg, self.conn, self.progress = index, cfg, conn, progress
        self.client_config = ClientConfig.of(cfg)
        self.receiver = Receiver(on_reconnect=self._rejoin)
        self.clients: List[Client] = []
        self.senders: List[Sender] = []
        self.connect_hist = Histogram()
        self.errors: Dict[str, int] = {}
        self.tasks = set()
        self.sampler = Sampler(self, progress, index * PROGRESS_SLOTS)

    def _spawn(self, coro):
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def _rejoin(self, client: Client):
        self.progress[self.sampler.base + P_RECONNECTED] += 1
        if not client.recovery.recovered:  # a recovered session kept its rooms
            self._spawn(self._join(client))

    async def main(self):
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.cfg.connect_timeout)
        loop = asyncio.get_running_loop()
        # No shared cookie jar: each client keeps its own cookies (polling.py).
        async with aiohttp.ClientSession(
                connector=connector, timeout=timeout,
                cookie_jar=aiohttp.DummyCookieJar()) as session:
            self.session = session
            sampler = self._spawn(self.sampler.run())
            try:
                for _ in range(100):  # bounded number of commands
                    command, arg = await loop.run_in_executor(None, self.conn.recv)
                    if command == 'close':
                        break
                    handler = getattr(self, f'cmd_{command}')
                    self.conn.send((command, await handler(**arg)))
            finally:
                sampler.cancel()
                await self._close_all()
                try:
                    self.conn.send(('closed', {}))
                except OSError:  # the coordinator is gone
                    pass

    async def _close_all(self):
        clients, self.clients = self.clients, []
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)

    async def _connect_one(self, client: Client, join: bool, sem) -> bool:
        async with sem:
            start = time.monotonic()
            try:
                await client.connect()
            except ConnectError as exc:
                self.errors[str(exc)] = self.errors.get(str(exc), 0) + 1
                self.progress[self.sampler.base + P_FAILED] += 1
                return False
            self.connect_hist.add(time.monotonic() - start)
        if join:
            await self._join(client)
        return True

    async def _join(self, client: Client):
        try:
            ack = await client.call('join', {'room': self.cfg.room})
            ok = isinstance(ack, dict) and ack.get('ok')
        except (ConnectionError, TimeoutError, ConnectError):
            ok = False
        client.state.joined = bool(ok)

    async def cmd_connect(self, clients: int, senders: int, rate: float, join: bool):
        cpu = CpuMeter()
        started = time.time()
        sem = asyncio.Semaphore(self.cfg.connect_concurrency)
        first = len(self.clients)
        new = [Client(self.client_config, self.receiver, self.session, first + i,
                      ClientState(sampled=(first + i) % self.cfg.latency_every == 0))
               for i in range(clients)]
        self.clients.extend(new)
        loop_start = time.monotonic()
        tasks = []
        for i, client in enumerate(new):
            delay = loop_start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(self._spawn(self._connect_one(client, join, sem)))
        await asyncio.gather(*tasks, return_exceptions=True)
        for k, client in enumerate(c for c in new if c.connected):
            if k >= senders:
                break
            self.senders.append(Sender(f'{self.index}.{k}', client))
        return connect_report(new, self.senders, self.connect_hist, self.errors,
                              time.time() - started, cpu.fraction())

    async def cmd_run(self, t0: float, duration: float, rate_per_sender: float,
                      drain: float, total_senders: int, first_sender: int):
        self.receiver.reset()
        self.sampler.loop_lag = Histogram()
        # Every run counts from zero (slow-consumer runs twice).
        self.senders = [Sender(s.id, s.client) for s in self.senders]
        for c in self.clients:
            c.state.start_instance = c.instance if c.connected else None
            c.state.trackers = {}
        return await send_window(self, t0, duration, rate_per_sender, drain,
                                 total_senders, first_sender)

    async def cmd_tally(self, senders: dict, include_clients: bool):
        return tally(self.clients, self.receiver, senders, include_clients,
                     self.sampler.timeline)

    async def cmd_probe(self, clients: int):
        """Connect fresh clients (no reconnect), say where they landed, close."""
        cfg = dataclasses.replace(self.client_config, reconnect=False)
        probes = [Client(cfg, Receiver(), self.session, i) for i in range(clients)]
        errors: Dict[str, int] = {}

        async def one(c):
            try:
                await c.connect()
            except ConnectError as exc:
                errors[str(exc)] = errors.get(str(exc), 0) + 1
        await asyncio.gather(*(one(c) for c in probes))
        landed: Dict[str, int] = {}
        for c in probes:
            if c.connected:
                landed[c.instance] = landed.get(c.instance, 0) + 1
        await asyncio.gather(*(c.close() for c in probes), return_exceptions=True)
        return {'landed': landed, 'errors': errors}

    async def cmd_hold(self, seconds: float):
        await asyncio.sleep(seconds)
        return {'connected': sum(c.connected for c in self.clients)}


def worker_main(index: int, cfg: Config, conn, progress):
    """Entry point of a generator process (multiprocessing target)."""
    raise_nofile_limit()
    try:
        import uvloop
        run = uvloop.run
    except ImportError:
        run = asyncio.run
    try:
        run(Worker(index, cfg, conn, progress).main())
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        conn.close()
