"""reconnect: a steady broadcast while one instance is killed (or stopped);
how fast its clients are back and receiving, and what they missed."""
import threading
import time
from typing import Dict

from loadtest import merge
from loadtest.pool import RunError
from loadtest.run import Run
from loadtest.stats import percentiles

NEEDS_CONTROLLER = True
# Wait between a restored instance being healthy and probing it: nginx skips
# a server for fail_timeout (1 s) after a failed connection.
RESTORE_SETTLE_SECONDS = 1.5


def pick_victim(landed: Dict[str, int], sender_instances) -> str:
    """The instance with the fewest senders, then the most clients: its
    clients must come back while the broadcast keeps going."""
    if not landed:
        raise RunError('no client landed anywhere; nothing to kill')
    return min(landed, key=lambda n: (sender_instances.count(n), -landed[n], n))


def during_broadcast(r: Run, replies, disrupt):
    """Broadcast, and run disrupt() in a thread kill_after seconds in.
    Returns (t0, tallies, times): times has 'at', 'done_at' or 'error'."""
    times = {}

    def do(t0):
        time.sleep(max(0.0, t0 + r.cfg.kill_after - time.time()))
        times['at'] = time.time()
        try:
            disrupt(times)
            times['done_at'] = time.time()
        except Exception as exc:  # reported in the result
            times['error'] = f'{type(exc).__name__}: {exc}'

    def schedule(t0):
        times['thread'] = threading.Thread(target=do, args=(t0,), daemon=True)
        times['thread'].start()

    t0, tallies = r.send(replies, at_start=schedule, include_clients=True)
    times['thread'].join(120)
    return t0, tallies, times


def losses(tallies, at: float, affected) -> dict:
    """What the clients that lost their connection (affected(c)) went
    through after `at`, and what every client missed, doubled, recovered."""
    lost = [c for t in tallies for c in t['lost_clients']]
    hit = [c for c in lost if affected(c)]
    back = [c['receiving'] - at for c in hit if c['receiving']]
    reconnected = [c['back'] - at for c in hit if c['back']]
    return {
        'lost_connection': len(hit), 'lost_connection_elsewhere': len(lost) - len(hit),
        'reconnected': len(reconnected), 'back_and_receiving': len(back),
        'time_to_reconnected_ms': percentiles(reconnected),
        'time_to_back_and_receiving_ms': percentiles(back),
        'landed_after': merge.merge_counts([{c['new_instance']: 1} for c in hit
                                            if c['new_instance']]),
        'missed_per_affected_client': percentiles([c['missed'] for c in hit], scale=1),
        'missed_total_affected': sum(c['missed'] for c in hit),
        'missed_total_unaffected': sum(t['missed_unaffected'] for t in tallies),
        'duplicates': sum(t['duplicates'] for t in tallies),
        'recovered_sessions': sum(t.get('recovered_sessions', 0) for t in tallies),
        'new_sessions': sum(t.get('new_sessions', 0) for t in tallies),
        'replayed': sum(t.get('replayed', 0) for t in tallies),
        'reconnect_failures': merge.merge_counts(t['reconnect_failures'] for t in tallies)}


def run(r: Run):
    cfg = r.cfg
    replies = r.connect(join=True)
    landed = r.result['connect']['clients_per_instance']
    victim = cfg.victim or pick_victim(landed, [i for x in replies
                                                for i in x['sender_instances']])
    if victim not in landed:
        r.warnings.append(f'victim {victim} holds no clients')

    def disrupt(times):
        (r.controller.kill if cfg.kill_mode == 'kill' else r.controller.stop)(victim)

    t0, tallies, kill = during_broadcast(r, replies, disrupt)
    if 'error' in kill:
        raise RunError(f'could not {cfg.kill_mode} {victim}: {kill["error"]}')
    kill_at = kill['at']
    n_aff = landed.get(victim, 0)
    out = losses(tallies, kill_at, lambda c: c['start_instance'] == victim)
    back = [c['receiving'] - kill_at for t in tallies for c in t['lost_clients']
            if c['start_instance'] == victim and c['receiving']]
    within = sum(1 for v in back if v <= cfg.deadline)
    r.result['reconnect'] = {
        'victim': victim, 'mode': cfg.kill_mode, 'controller': r.controller.kind,
        'recover': cfg.recover, 'kill_at_s': round(kill_at - t0, 3),
        'kill_call_seconds': round(kill.get('done_at', kill_at) - kill_at, 3),
        'affected_clients': n_aff, 'deadline_s': cfg.deadline,
        'pct_back_within_deadline': round(100.0 * within / n_aff, 2) if n_aff else None,
        **out}
    r.result['timeline'] = merge.merge_timeline([t['timeline'] for t in tallies], t0)
    r.result['timeline']['kill_at'] = round(kill_at - t0, 3)
    if cfg.restore:
        restore(r, victim)


def restore(r: Run, victim: str):
    started = time.time()
    try:
        r.controller.start(victim)
    except Exception as exc:
        r.result['restore'] = {'instance': victim, 'error': f'{type(exc).__name__}: {exc}'}
        r.warnings.append(f'could not restore {victim}: {str(exc).splitlines()[0]}')
        return
    took = time.time() - started
    time.sleep(RESTORE_SETTLE_SECONDS)
    probe = r.pool.ask_one(0, 'probe', {'clients': r.cfg.probe_clients}, 120)
    r.result['restore'] = {
        'instance': victim, 'start_seconds': round(took, 2),
        'probe_after_seconds': RESTORE_SETTLE_SECONDS,
        'probe_clients': r.cfg.probe_clients, 'probe_landed': probe['landed'],
        'probe_errors': probe['errors'],
        'new_clients_reach_restored': probe['landed'].get(victim, 0) > 0}
