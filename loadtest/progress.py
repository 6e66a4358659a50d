"""A one-line progress bar on stderr, fed from the workers' shared counters."""
import sys
import time

from loadtest.meter import (
    P_CONNECTED,
    P_CPU,
    P_FAILED,
    P_RECEIVED,
    P_RECONNECTED,
    P_SENT,
    PROGRESS_SLOTS,
)


class Progress:
    def __init__(self, label: str, total: float, unit: str, clock: bool = False,
                 stream=None, every: float = 0.25):
        self.label, self.total, self.unit, self.clock = label, total, unit, clock
        self.stream = stream or sys.stderr
        self.every = every
        self.start = time.monotonic()
        self.last = 0.0
        self.tty = self.stream.isatty()

    def _sum(self, progress, slot):
        return sum(progress[i + slot] for i in range(0, len(progress), PROGRESS_SLOTS))

    def line(self, progress) -> str:
        elapsed = time.monotonic() - self.start
        done = elapsed if self.clock else self._sum(progress, P_CONNECTED)
        frac = min(1.0, done / self.total) if self.total else 1.0
        bar = '#' * int(frac * 30)
        cpus = [progress[i + P_CPU] for i in range(0, len(progress), PROGRESS_SLOTS)]
        return (f'{self.label:9} [{bar:30}] {frac:4.0%} '
                f'conn {int(self._sum(progress, P_CONNECTED))} '
                f'fail {int(self._sum(progress, P_FAILED))} '
                f'sent {int(self._sum(progress, P_SENT))} '
                f'recv {int(self._sum(progress, P_RECEIVED))} '
                f'reconn {int(self._sum(progress, P_RECONNECTED))} '
                f'cpu {"/".join(f"{c:.0%}" for c in cpus)} {elapsed:5.1f}s')

    def update(self, progress, force=False):
        now = time.monotonic()
        # Without a terminal, print a line every 5 s instead of redrawing.
        every = self.every if self.tty else 5.0
        if not force and now - self.last < every:
            return
        self.last = now
        end = '\r' if self.tty else '\n'
        self.stream.write(self.line(progress) + end)
        self.stream.flush()

    def done(self, progress):
        self.update(progress, force=True)
        if self.tty:
            self.stream.write('\n')
            self.stream.flush()
