"""The runs of one benchmark, each a `python -m loadtest ...` command whose
JSON lands in bench/results/."""
import sys
from pathlib import Path
from typing import List

from loadtest import cli
from loadtest.bench.results import Results, passes
from loadtest.pool import RunError

# Past the --delivered list, each further step asks this much more.
STEP_UP = 1.2


class Bench:
    def __init__(self, args, results: Results, results_dir: Path):
        self.args, self.results, self.results_dir = args, results, results_dir

    def log(self, text: str):
        print(f'bench: {text}', file=sys.stderr, flush=True)

    def run(self, name: str, section: str, label: str, argv: List[str], target) -> dict:
        """One loadtest run against target (.url, .controller)."""
        a = self.args
        argv = [*argv, '--url', target.url, '--origin', a.origin, '--compression',
                a.compression, '--procs', str(a.procs), '--latency-every',
                str(a.latency_every), '--out', str(self.results_dir / f'{name}.json'), '-q']
        self.log(f'{name}: python -m loadtest {" ".join(argv)}')
        try:
            result = cli.run(argv, target.controller)
        except RunError as exc:
            self.log(f'{name} failed: {exc}')
            self.results.add(name, section, label, None, str(exc))
            return None
        self.results.add(name, section, label, result)
        self.log(f'{name}: valid={result["valid"]} problems={result["problems"]}')
        return result

    def broadcast_argv(self, clients: int, delivered: float) -> List[str]:
        a = self.args
        return ['broadcast', '-c', str(clients), '-s', str(a.senders),
                '-r', f'{delivered / clients:g}', '-d', f'{a.duration:g}',
                '--drain', f'{a.drain:g}', '--connect-rate', f'{a.connect_rate:g}']

    def sweep(self, label: str, target):
        """Each --delivered step; past the list, keep stepping up while it passes.
        Stop at a step that loses messages or whose p99 passes --stop-p99-ms."""
        a = self.args
        steps = list(a.delivered)
        for _ in range(50):  # bounded; the list and the stop rule end it first
            if not steps:
                break
            delivered = steps.pop(0)
            r = self.run(f'sweep-{label}-{delivered:g}', 'sweep', label,
                         self.broadcast_argv(a.room_clients, delivered), target)
            if r is None:
                break
            d = r['delivery']
            if d['delivery_ratio'] != 1.0 or (d['latency_ms']['all']['p99'] or 0) > a.stop_p99_ms:
                break
            if not steps and passes(r, a.p99_ms) and delivered * STEP_UP <= a.max_delivered:
                steps.append(round(delivered * STEP_UP, -3))

    def hold(self, target):
        a = self.args
        self.run('hold', 'hold', 'main', [
            'ramp', '-c', str(a.hold_clients), '--connect-rate', f'{a.connect_rate:g}',
            '--hold', f'{a.hold_seconds:g}'], target)

    def slow_consumer(self, target):
        a = self.args
        # The slow member is one more: the others are room-clients - 1.
        others = a.room_clients - 1
        argv = self.broadcast_argv(others, a.slow_delivered)
        argv[0] = 'slow-consumer'
        self.run('slow-consumer', 'slow', 'main', argv, target)

    def reconnect(self, target):
        a = self.args
        for mode in ('kill', 'stop'):
            self.run(f'reconnect-{mode}', 'reconnect', 'main', [
                'reconnect', '-c', str(a.room_clients), '-s', str(a.senders),
                '-r', f'{a.reconnect_rate:g}', '-d', '20', '--kill-after', '5',
                '--kill-mode', mode, '--drain', f'{a.drain:g}',
                # The times measured here are around a second: a generator
                # running callbacks 250 ms late is still a 25% error, not more.
                '--max-lag-ms', '250', '--deadline', '30',
                '--connect-rate', f'{a.connect_rate:g}'], target)
