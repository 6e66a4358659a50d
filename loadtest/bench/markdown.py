"""BENCHMARKS.md from a Results object: one function per section, each
saying what actually ran (machine, options, thresholds) from the records."""
import time
from pathlib import Path
from typing import List
from urllib.parse import urlsplit

from loadtest.bench.results import Results
from loadtest.report import slow_consumer_rows


def _ms(v):
    return '-' if v is None else f'{v:,.1f}'


def _rel(path: str, base: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return path


def _cpu(result, label='send window'):
    cpus = result.get('generator_cpu', {}).get(label)
    return ' / '.join(f'{c:.0%}' for c in cpus) if cpus else '-'


def _lag(result):
    lags = result.get('generator_loop_lag_ms', {}).get('send window')
    return ' / '.join(_ms(x['p99']) for x in lags) if lags else '-'


def _cluster_cpu(result):
    cc = result.get('cluster_cpu')
    return ', '.join(f'{n} {v:.0%}' for n, v in cc['fraction_of_a_core'].items()) \
        if cc else '-'


def _busy(result):
    mc = result.get('machine_cpu')
    return f'{mc["busy_fraction"]:.0%}' if mc else '-'


def _where(url: str) -> str:
    host = urlsplit(url).hostname or ''
    local = host == 'localhost' or host.startswith('127.') or host == '::1'
    return 'on the same machine as the cluster' if local else f'driving {host}'


def header(res: Results, base: Path) -> List[str]:
    started = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(res.meta['started']))
    results_dir = Path(res.meta['options']['out_dir']) / 'results'
    return ['# Benchmarks', '',
            f'Measured {started} by `{res.meta["command"]}` (`make bench`). Every number '
            f'below comes from a JSON result in `{_rel(str(results_dir), base)}/`, which '
            f'also records the exact `python -m loadtest ...` command, the machine, the '
            f'versions and the cluster.', '']


def machine(res: Results) -> List[str]:
    r = res.any_result()
    if r is None:
        return ['No run produced a result.', '']
    m, v, c, o = r['machine'], r['versions'], r['config'], res.meta['options']
    lines = ['## Machine, clusters and generator', '',
             f'- {m.get("cores")} cores ({m.get("cpu_model")}), {m.get("ram_gib")} GiB RAM, '
             f'Linux {m.get("kernel")}; load average at the first run\'s start '
             f'{m.get("loadavg_at_start")}.']
    for label, note in res.meta['clusters'].items():
        lines.append(f'- Cluster `{label}`: {note}.')
    lines += [
        f'- python {v["python"]}, python-socketio {v["python-socketio"]}, python-engineio '
        f'{v["python-engineio"]}, gunicorn {v["gunicorn"]}, eventlet {v["eventlet"]}, '
        f'{v.get("nginx") or "nginx ?"}, {(v.get("redis_server") or "redis ?").split(" sha")[0]}.',
        f'- Load generator: picows {v.get("picows")} on uvloop {v.get("uvloop")}, '
        f'{c["procs"]} process(es) {_where(c["url"])}; permessage-deflate '
        f'offered: {c["compression"]}. Every client counts delivery, duplicates and order; '
        f'latency is measured on one client in {c["latency_every"]} of each process.',
        f'- A run is invalid when a generator process uses more than {c["max_cpu"]:.0%} '
        f'of a core or its event loop runs callbacks more than {c["max_lag_ms"]:g} ms '
        f'late (p99). A step passes with delivery ratio 1.000, p99 under '
        f'{o["p99_ms"]:g} ms and a valid run.', '']
    return lines


def sweep(res: Results, label: str, base: Path) -> List[str]:
    rows = res.sweep(label)
    if not rows:
        return []
    c = rows[0][1]['config']
    lines = [f'## Broadcast to one room of {c["clients"]:,} clients (`{label}`)', '',
             f'{c["senders"]} senders share the rate; every broadcast reaches all '
             f'{c["clients"]:,} members, so delivered msg/s = broadcasts/s x members. '
             f'Each step sends for {c["duration"]:g} s.', '',
             '| delivered msg/s asked | got | ratio | dup / ooo | p50 ms | p99 ms | '
             'max ms | deflate | generator CPU / lag p99 ms | cluster CPU | machine busy | pass |',
             '|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---|']
    for asked, r, ok in rows:
        d, lat = r['delivery'], r['delivery']['latency_ms']['all']
        z = r.get('compression', {})
        lines.append(
            f'| {asked:,.0f} | {d["delivered_per_second"]:,.0f} | {d["delivery_ratio"]:.6f} | '
            f'{d["duplicates"]} / {d["out_of_order"]} | {_ms(lat["p50"])} | '
            f'{_ms(lat["p99"])} | {_ms(lat["max"])} | {z.get("negotiated", "-")} of '
            f'{z.get("websocket_connections", "-")} | {_cpu(r)} / {_lag(r)} | '
            f'{_cluster_cpu(r)} | {_busy(r)} | {"yes" if ok else "**no**"}'
            f'{"" if r["valid"] else " (invalid)"} |')
    best = [r for _, r, ok in rows if ok]
    lines.append('')
    if best:
        d = best[-1]['delivery']
        lines.append(f'**Highest passing step: {d["delivered_per_second"]:,.0f} delivered '
                     f'msg/s**, p99 {_ms(d["latency_ms"]["all"]["p99"])} ms. Command: '
                     f'`{best[-1]["command"]}`')
        lines += ['', *[f'![latency CDF]({_rel(p, base)})' for p in best[-1].get('plots', [])]]
    else:
        lines.append('**No step passed** (see the table).')
    return lines + ['']


def workers(res: Results) -> List[str]:
    labels = [x for x in res.labels('sweep') if x in ('eventlet', 'gevent')]
    if len(labels) < 2:
        return []
    steps = {label: {round(a): (r, ok) for a, r, ok in res.sweep(label)} for label in labels}
    asked = sorted({a for s in steps.values() for a in s})
    lines = ['## Worker classes side by side', '',
             'The same sweep on a fresh native cluster per worker class (p99 ms, ratio).', '',
             '| delivered msg/s | ' + ' | '.join(labels) + ' |',
             '|---:|' + '---|' * len(labels)]
    for a in asked:
        cells = []
        for label in labels:
            r, ok = steps[label].get(a, (None, False))
            cells.append('-' if r is None else
                         f'{_ms(r["delivery"]["latency_ms"]["all"]["p99"])} ms, '
                         f'{r["delivery"]["delivery_ratio"]:.3f}{"" if ok else " (fail)"}')
        lines.append(f'| {a:,} | ' + ' | '.join(cells) + ' |')
    return lines + ['']


def compose(res: Results) -> List[str]:
    compose_rows = {round(a): r for a, r, _ in res.sweep('compose')}
    native = next((x for x in res.labels('sweep') if x != 'compose'), None)
    if not compose_rows or native is None:
        return []
    lines = ['## Compose vs native', '',
             f'The sweep against the compose cluster next to `{native}`.', '',
             '| delivered msg/s | native p99 ms | compose p99 ms | compose / native |',
             '|---:|---:|---:|---:|']
    for a, r, _ in res.sweep(native):
        c = compose_rows.get(round(a))
        n99 = r['delivery']['latency_ms']['all']['p99']
        c99 = c['delivery']['latency_ms']['all']['p99'] if c else None
        lines.append(f'| {a:,.0f} | {_ms(n99)} | {_ms(c99)} | '
                     f'{f"{c99 / n99:.2f}" if c99 and n99 else "-"} |')
    return lines + ['']


def _single(res: Results, section: str, title: str):
    """The one run of a section and the lines that open its section; no run,
    no lines; a failed run, its error."""
    r = res.one(section)
    if r is None:
        return None, []
    lines = [f'## {title}', '']
    if 'error' in r:
        return None, lines + [f'Not measured: {r["error"]}', '']
    return r, lines + [f'Command: `{r["command"]}`', '']


def hold(res: Results) -> List[str]:
    r, lines = _single(res, 'hold', 'WebSocket clients held (memory per connection)')
    if r is None:
        return lines
    c = r['connect']
    lines += [f'- Connected **{c["connected"]:,} of {c["attempted"]:,}**; '
              f'{r["ramp"]["still_connected"]:,} still connected after '
              f'{r["ramp"]["held_after_s"]:g} s. Errors: {c["errors"] or "none"}. '
              f'permessage-deflate negotiated on {r["compression"]["negotiated"]:,}.',
              f'- Connect rate achieved {c["connects_per_second"]} /s; connect latency p50 '
              f'{_ms(c["connect_latency_ms"]["p50"])} ms, p99 '
              f'{_ms(c["connect_latency_ms"]["p99"])} ms.', '',
              '| instance | clients | RSS before (MiB) | RSS after (MiB) | KiB per connection |',
              '|---|---:|---:|---:|---:|']
    for name, mem in r['ramp']['memory'].items():
        lines.append(f'| {name} | {mem["clients"]:,} | {mem["rss_before_mib"]} | '
                     f'{mem["rss_after_mib"]} | {mem["kib_per_connection"]} |')
    return lines + ['', f'RSS read via {r["ramp"]["rss_source"]} before connecting and '
                    f'after the hold.', '']


def slow(res: Results) -> List[str]:
    r, lines = _single(res, 'slow', 'A slow consumer in the room')
    if r is None:
        return lines
    sc = r['slow_consumer']
    lines += [f'{r["config"]["clients"]:,} clients receive for {r["config"]["duration"]:g} s, '
              f'then again for as long with one more member that joined over a bare '
              f'socket and never read.', '', '| | |', '|---|---|']
    lines += [f'| {k} | {v} |' for k, v in slow_consumer_rows(sc)]
    return lines + ['']


def reconnect(res: Results, base: Path) -> List[str]:
    runs = [r for _, r in res.named('reconnect')]
    if not runs:
        return []
    lines = ['## Reconnect after one of the instances goes away', '']
    for r in runs:
        if 'error' in r:
            lines += [f'- Not measured: {r["error"]}', '']
            continue
        rc, d = r['reconnect'], r['delivery']
        back, miss = rc['time_to_back_and_receiving_ms'], rc['missed_per_affected_client']
        lines += [f'### {rc["mode"]} {rc["victim"]} ({rc["controller"]})', '',
                  f'Command: `{r["command"]}`', '',
                  f'- {rc["affected_clients"]:,} clients were on {rc["victim"]}; '
                  f'{rc["back_and_receiving"]:,} back and receiving, '
                  f'{_ms(rc["pct_back_within_deadline"])}% within {rc["deadline_s"]:g} s; '
                  f'they landed on {rc["landed_after"]}.',
                  f'- Kill to back and receiving: p50 {_ms(back["p50"])} ms, **p99 '
                  f'{_ms(back["p99"])} ms**, max {_ms(back["max"])} ms.',
                  f'- Missed per affected client: p50 {miss["p50"]}, p99 {miss["p99"]}, max '
                  f'{miss["max"]}; clients elsewhere missed {rc["missed_total_unaffected"]}. '
                  f'Overall delivery ratio {d["delivery_ratio"]:.6f}.', '']
        lines += [f'![reconnect timeline]({_rel(p, base)})' for p in r.get('plots', [])
                  if p.endswith('timeline.png')]
        lines.append('')
    return lines


def problems(res: Results) -> List[str]:
    lines = ['## Problems and warnings recorded by the runs', '']
    for name, r in res.runs.items():
        if r.get('error') or r.get('problems'):
            lines.append(f'- {name}: {r.get("error") or "; ".join(r["problems"])}')
        for w in r.get('warnings') or []:
            lines.append(f'- {name} (warning): {w}')
    return lines + (['- none'] if len(lines) == 2 else []) + ['']


def rerun(res: Results) -> List[str]:
    return ['## Rerun', '', '```', '.venv/bin/python -m loadtest.bench --start-native',
            '```', '', 'or `make bench` against a running cluster (`make local`, '
            '`make up`). `python -m loadtest selftest` measures the generator alone.', '']


def write_markdown(res: Results, path: Path, notes: Path):
    base = path.parent
    lines = header(res, base) + machine(res)
    for label in res.labels('sweep'):
        if label != 'compose':
            lines += sweep(res, label, base)
    lines += workers(res) + compose(res) + hold(res) + slow(res) + reconnect(res, base)
    lines += problems(res) + rerun(res)
    if notes.exists():
        lines += [notes.read_text().rstrip(), '']
    path.write_text('\n'.join(lines))
