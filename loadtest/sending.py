"""The senders of one generator process: broadcasts on a schedule, with acks."""
import asyncio
import time

from loadtest.client import ConnectError
from loadtest.meter import CpuMeter
from loadtest.state import Sender


async def _send_one(worker, sender: Sender, seq: int):
    sent_at = time.time()
    payload = {'room': worker.cfg.room, 'data': {'s': sender.id, 'q': seq, 't': sent_at}}
    try:
        ack = await sender.client.call('broadcast', payload, timeout=worker.cfg.ack_timeout)
    except (ConnectionError, TimeoutError, ConnectError, RuntimeError):
        return
    if isinstance(ack, dict) and ack.get('ok'):
        sender.unacked.discard(seq)
        sender.ack.add(time.time() - sent_at)
    else:
        sender.refused += 1


async def _sender_loop(worker, sender: Sender, t0: float, t_end: float, rate: float,
                       offset: float):
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
            worker._spawn(_send_one(worker, sender, seq))
        else:
            sender.skipped += 1
        due += interval


async def send_window(worker, t0: float, duration: float, rate_per_sender: float,
                      drain: float, total_senders: int, first_sender: int) -> dict:
    """Wait for t0, send for `duration`, wait `drain`; report the senders, and
    this process's CPU and loop lag over the send window."""
    t_end = t0 + duration
    await asyncio.sleep(max(0.0, t0 - time.time()))
    worker.receiver.run_started = time.time()
    cpu = CpuMeter()
    loops = []
    if rate_per_sender > 0:
        for k, sender in enumerate(worker.senders):
            # Spread the senders' first sends over one interval.
            offset = (first_sender + k) / total_senders / rate_per_sender
            loops.append(worker._spawn(_sender_loop(worker, sender, t0, t_end,
                                                    rate_per_sender, offset)))
    await asyncio.gather(*loops, return_exceptions=True)
    # The send window is the schedule, not the loops (a sender whose first
    # slot falls after the end never runs): a tiny window would turn a
    # millisecond of CPU into a false "saturated".
    await asyncio.sleep(max(0.0, t_end - time.time()))
    # A saturated loop wakes up late: measure over the time that really passed.
    send_cpu, window_end = cpu.fraction(), time.time()
    send_lag = worker.sampler.loop_lag.to_dict()
    received_in_window = worker.receiver.received
    await asyncio.sleep(max(0.0, t_end + drain - time.time()))
    return {'senders': {s.id: s.report() for s in worker.senders},
            'send_cpu': send_cpu, 'send_lag': send_lag,
            'received_in_window': received_in_window,
            'window_seconds': window_end - max(t0, worker.receiver.run_started)}
