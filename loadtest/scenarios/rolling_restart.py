"""rolling-restart: a steady broadcast while every instance is restarted,
one at a time (control/rolling.py, as `make rolling-restart` does). Every
client that moves should recover its session: nothing missed or doubled."""
from loadtest import merge
from loadtest.pool import RunError
from loadtest.run import Run
from loadtest.scenarios.reconnect import during_broadcast, losses

NEEDS_CONTROLLER = True


def run(r: Run):
    from control.rolling import rolling_restart
    cfg = r.cfg
    replies = r.connect(join=True)
    steps = []
    t0, tallies, times = during_broadcast(
        r, replies, lambda times: rolling_restart(r.controller, cfg.url, say=steps.append))
    if 'error' in times:
        raise RunError(f'rolling restart failed: {times["error"]}')
    r.result['rolling_restart'] = {
        'controller': r.controller.kind, 'recover': cfg.recover, 'steps': steps,
        'started_at_s': round(times['at'] - t0, 3),
        'took_s': round(times['done_at'] - times['at'], 3),
        **losses(tallies, times['at'], lambda c: True)}
    r.result['timeline'] = merge.merge_timeline([t['timeline'] for t in tallies], t0)
    r.result['timeline']['kill_at'] = round(times['at'] - t0, 3)
