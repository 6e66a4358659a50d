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


def run(r: Run):
    cfg = r.cfg
    replies = r.connect(join=True)
    landed = r.result['connect']['clients_per_instance']
    victim = cfg.victim or pick_victim(landed, [i for x in replies
                                                for i in x['sender_instances']])
    if victim not in landed:
        r.warnings.append(f'victim {victim} holds no clients')
    kill = {}

    def do_kill(t0):
        time.sleep(max(0.0, t0 + cfg.kill_after - time.time()))
        kill['at'] = time.time()
        try:
            (r.controller.kill if cfg.kill_mode == 'kill' else r.controller.stop)(victim)
            kill['done_at'] = time.time()
        except Exception as exc:  # reported in the result
            kill['error'] = f'{type(exc).__name__}: {exc}'

    def schedule(t0):
        kill['thread'] = threading.Thread(target=do_kill, args=(t0,), daemon=True)
        kill['thread'].start()

    t0, tallies = r.send(replies, at_start=schedule, include_clients=True)
    kill['thread'].join(60)
    if 'error' in kill:
        raise RunError(f'could not {cfg.kill_mode} {victim}: {kill["error"]}')
    kill_at = kill['at']
    lost = [c for t in tallies for c in t['lost_clients']]
    affected = [c for c in lost if c['start_instance'] == victim]
    back = [c['receiving'] - kill_at for c in affected if c['receiving']]
    reconnected = [c['back'] - kill_at for c in affected if c['back']]
    n_aff = landed.get(victim, 0)
    within = sum(1 for v in back if v <= cfg.deadline)
    r.result['reconnect'] = {
        'victim': victim, 'mode': cfg.kill_mode, 'controller': r.controller.kind,
        'kill_at_s': round(kill_at - t0, 3),
        'kill_call_seconds': round(kill.get('done_at', kill_at) - kill_at, 3),
        'affected_clients': n_aff, 'lost_connection': len(affected),
        'lost_connection_elsewhere': len(lost) - len(affected),
        'reconnected': len(reconnected), 'back_and_receiving': len(back),
        'deadline_s': cfg.deadline,
        'pct_back_within_deadline': round(100.0 * within / n_aff, 2) if n_aff else None,
        'time_to_reconnected_ms': percentiles(reconnected),
        'time_to_back_and_receiving_ms': percentiles(back),
        'landed_after': merge.merge_counts([{c['new_instance']: 1} for c in affected
                                            if c['new_instance']]),
        'missed_per_affected_client': percentiles([c['missed'] for c in affected], scale=1),
        'missed_total_affected': sum(c['missed'] for c in affected),
        'missed_total_unaffected': sum(t['missed_unaffected'] for t in tallies),
        'reconnect_failures': merge.merge_counts(t['reconnect_failures'] for t in tallies)}
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
