"""Whether a run's numbers can be trusted: each check adds to `problems`
(the run is invalid) or `warnings`."""
from typing import List

from loadtest.merge import merge_counts
from loadtest.stats import Histogram


def transport(result: dict, problems: List[str], asked_for: str, replies: List[dict]):
    """Transport asked vs got; a mismatch makes the run fail loudly."""
    asked = 'websocket' if asked_for in ('websocket', 'upgrade') else 'polling'
    got = merge_counts(r['transports'] for r in replies)
    result['transport'] = {
        'asked': asked_for, 'expected_in_use': asked, 'got': got,
        'server_saw_at_connect': merge_counts(r['welcome_transports'] for r in replies),
        'upgrade_errors': merge_counts(r['upgrade_errors'] for r in replies)}
    wrong = sum(n for t, n in got.items() if t != asked)
    if wrong:
        problems.append(
            f'TRANSPORT MISMATCH: asked for {asked} ({asked_for}), but {wrong} '
            f'client(s) use {", ".join(t for t in got if t != asked)}; upgrade '
            f'errors: {result["transport"]["upgrade_errors"]}')
        result['transport_mismatch'] = True


def compression(result: dict, warnings: List[str], offered: bool, replies: List[dict]):
    """Record how many WebSockets the server let compress."""
    ws = sum(n for t, n in result['transport']['got'].items() if t == 'websocket')
    accepted = sum(r['compressed'] for r in replies)
    result['compression'] = {
        'offered': offered, 'websocket_connections': ws, 'negotiated': accepted,
        'server_answers': merge_counts(r['extensions'] for r in replies)}
    if offered and 0 < accepted < ws:
        warnings.append(f'the server accepted permessage-deflate on {accepted} of '
                        f'{ws} WebSockets: instances disagree on WS_COMPRESSION?')


def cpu(result: dict, problems: List[str], label: str, fractions: List[float],
        max_cpu: float):
    result.setdefault('generator_cpu', {})[label] = [round(f, 3) for f in fractions]
    hot = [f for f in fractions if f > max_cpu]
    if hot:
        problems.append(
            f'GENERATOR SATURATED during {label}: {max(hot):.0%} of a core in a '
            f'generator process (limit {max_cpu:.0%}); the numbers measure the '
            f'generator, not the cluster. Use more --procs or fewer clients.')


def lag(result: dict, problems: List[str], label: str, lags: List[Histogram],
        max_lag_ms: float):
    """Event-loop lag of the generators: a loop that runs its callbacks late
    adds that delay to every latency it measures, whatever its CPU."""
    summaries = [h.summary() for h in lags]
    result.setdefault('generator_loop_lag_ms', {})[label] = summaries
    worst = max((s['p99'] or 0) for s in summaries) if summaries else 0
    if worst > max_lag_ms:
        problems.append(
            f'GENERATOR LAGGING during {label}: its event loop ran callbacks '
            f'{worst:.0f} ms late (p99; limit {max_lag_ms:g} ms), so measured '
            f'latencies include the generator\'s own delay. Use more --procs or '
            f'fewer clients.')
