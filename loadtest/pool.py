"""The generator processes and the pipes the coordinator drives them by."""
import multiprocessing as mp
import time
from typing import List, Optional

from loadtest.config import Config
from loadtest.meter import PROGRESS_SLOTS
from loadtest.progress import Progress
from loadtest.worker import worker_main


class RunError(RuntimeError):
    """The run could not produce a result (no cluster, no clients...)."""


def split(total: int, parts: int) -> List[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class Pool:
    """cfg.procs worker processes (spawned, so each has its own event loop)."""

    def __init__(self, cfg: Config):
        ctx = mp.get_context('spawn')
        self.progress = ctx.Array('d', cfg.procs * PROGRESS_SLOTS, lock=False)
        self.pipes, self.procs = [], []
        for i in range(cfg.procs):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, name=f'loadtest-{i}',
                               args=(i, cfg, child, self.progress), daemon=True)
            proc.start()
            child.close()
            self.pipes.append(parent)
            self.procs.append(proc)

    def __len__(self):
        return len(self.procs)

    def ask(self, command: str, args: List[dict], timeout: float,
            bar: Optional[Progress] = None) -> List[dict]:
        """Send one command to every worker (args[i] to worker i), wait for all."""
        for pipe, arg in zip(self.pipes, args):
            pipe.send((command, arg))
        replies: List[Optional[dict]] = [None] * len(self.pipes)
        deadline = time.monotonic() + timeout
        while any(r is None for r in replies):
            if time.monotonic() > deadline:
                raise RunError(f'generator processes did not finish {command!r} '
                               f'within {timeout:.0f}s')
            for i, pipe in enumerate(self.pipes):
                if replies[i] is None and pipe.poll(0.05):
                    try:
                        replies[i] = pipe.recv()[1]
                    except EOFError:
                        raise RunError(f'generator process {i} died during '
                                       f'{command!r}') from None
            if bar:
                bar.update(self.progress)
        if bar:
            bar.done(self.progress)
        return replies

    def ask_all(self, command: str, arg: dict, timeout: float) -> List[dict]:
        return self.ask(command, [arg] * len(self.pipes), timeout)

    def ask_one(self, index: int, command: str, arg: dict, timeout: float):
        pipe = self.pipes[index]
        pipe.send((command, arg))
        if not pipe.poll(timeout):
            raise RunError(f'generator process {index} did not finish {command!r}')
        return pipe.recv()[1]

    def close(self):
        for pipe in self.pipes:
            try:
                pipe.send(('close', {}))
            except (OSError, BrokenPipeError):
                pass
        for pipe, proc in zip(self.pipes, self.procs):
            if pipe.poll(15):
                try:
                    pipe.recv()
                except EOFError:
                    pass
            proc.join(10)
            if proc.is_alive():  # our own child, by its handle
                proc.terminate()
                proc.join(5)
