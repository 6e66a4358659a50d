"""A generator process watching itself: CPU, event-loop lag, progress, and
who is connected where over time."""
import asyncio
import time

from loadtest.stats import Histogram

SAMPLE_EVERY = 0.1   # seconds between timeline samples
# Progress slots per worker in the shared array (progress.py reads them).
P_CONNECTED, P_FAILED, P_RECEIVED, P_SENT, P_CPU, P_RECONNECTED = range(6)
PROGRESS_SLOTS = 6


class CpuMeter:
    """CPU used by this process over a window, as a fraction of one core."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.cpu0, self.wall0 = time.process_time(), time.monotonic()

    def fraction(self) -> float:
        wall = time.monotonic() - self.wall0
        return (time.process_time() - self.cpu0) / wall if wall > 0 else 0.0


class Sampler:
    """Every SAMPLE_EVERY s: loop lag (during a run), the connected-clients
    timeline, and the progress slots of this worker in the shared array."""

    def __init__(self, worker, progress, base: int):
        self.worker, self.progress, self.base = worker, progress, base
        self.loop_lag = Histogram()
        self.timeline = []

    async def run(self):
        worker, pr, b = self.worker, self.progress, self.base
        receiver = worker.receiver
        meter = CpuMeter()
        t0 = time.monotonic()
        for n in range(int(86400 / SAMPLE_EVERY)):  # bounded: one day
            before = time.monotonic()
            await asyncio.sleep(SAMPLE_EVERY)
            # Oversleep = how late this event loop runs its callbacks; every
            # latency measured here includes it.
            if receiver.run_started is not None:
                self.loop_lag.add(max(0.0, time.monotonic() - before - SAMPLE_EVERY))
            self.timeline.append([round(time.time(), 2),
                                  dict(receiver.connected_per_instance)])
            if len(worker.clients) < 2000 or n % 5 == 0:
                pr[b + P_CONNECTED] = sum(c.connected for c in worker.clients)
            pr[b + P_RECEIVED] = receiver.received
            pr[b + P_SENT] = sum(s.sent for s in worker.senders)
            if time.monotonic() - t0 >= 1.0:
                pr[b + P_CPU] = meter.fraction()
                meter.reset()
                t0 = time.monotonic()
