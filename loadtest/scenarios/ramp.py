"""ramp: connect the clients (no room), hold them, and weigh each instance:
its RSS growth per connection."""
from loadtest import checks, merge
from loadtest.run import Run

NEEDS_CONTROLLER = False


def mib(value):
    return None if value is None else round(value / 1024 / 1024, 1)


def run(r: Run):
    cfg, controller = r.cfg, r.controller
    names = controller.instances()
    before = {n: controller.rss(n) for n in names}
    r.connect(join=False)
    checks.cpu(r.result, r.problems, 'connect', r.result['connect']['generator_cpu'],
               cfg.max_cpu)
    held = r.pool.ask_all('hold', {'seconds': cfg.hold}, cfg.hold + 60)
    after = {n: controller.rss(n) for n in names}
    landed = r.result['connect']['clients_per_instance']
    memory = {}
    for n in names:
        b, a, c = before.get(n), after.get(n), landed.get(n, 0)
        memory[n] = {'rss_before_mib': mib(b), 'rss_after_mib': mib(a), 'clients': c,
                     'kib_per_connection': round((a - b) / c / 1024, 1)
                     if a is not None and b is not None and c else None}
    r.result['ramp'] = {'held_after_s': cfg.hold,
                        'still_connected': sum(h['connected'] for h in held),
                        'memory': memory, 'rss_source': controller.kind}
    if not any(m['kib_per_connection'] for m in memory.values()):
        r.warnings.append('no instance RSS available (use --kill-via native|docker '
                          'to say where the instances run)')
    tallies = r.pool.ask_all('tally', {'senders': {}, 'include_clients': False}, 120)
    timeline = tallies[0]['timeline']
    r.result['timeline'] = merge.merge_timeline([t['timeline'] for t in tallies],
                                                timeline[0][0] if timeline else 0)
