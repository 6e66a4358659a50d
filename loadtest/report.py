"""Output of a run: the summary table, the JSON file and the PNG plots."""
import json
from pathlib import Path
from typing import List

REQUIRED_FIELDS = ('scenario', 'command', 'machine', 'versions', 'cluster',
                   'transport', 'generator_cpu', 'valid', 'problems', 'connect')


def _fmt(v):
    if v is None:
        return '-'
    if isinstance(v, float):
        return f'{v:,.3f}'.rstrip('0').rstrip('.') if abs(v) < 1000 else f'{v:,.0f}'
    if isinstance(v, int):
        return f'{v:,}'
    if isinstance(v, dict):
        return ', '.join(f'{k}={_fmt(x)}' for k, x in v.items())
    return str(v)


def summary_rows(result: dict) -> List[tuple]:
    """The summary table's rows, one helper per part of the result."""
    rows = [('scenario', result['scenario']),
            ('valid', 'yes' if result.get('valid') else 'NO'),
            ('transport asked / got', f"{result['transport']['asked']} / "
             f"{_fmt(result['transport']['got'])}")]
    rows += connect_rows(result) + selftest_rows(result.get('selftest'))
    rows += delivery_rows(result.get('delivery')) + reconnect_rows(result)
    rows += recovery_rows(result)
    rows += slow_consumer_rows(result.get('slow_consumer')) + ramp_rows(result.get('ramp'))
    rows += cpu_rows(result)
    rows += [('PROBLEM', p) for p in result.get('problems', [])]
    rows += [('warning', w) for w in result.get('warnings', [])]
    return rows


def connect_rows(result: dict) -> List[tuple]:
    c = result['connect']
    rows = [('clients connected', f"{c['connected']} of {c['attempted']}"),
            ('clients per instance', _fmt(c['clients_per_instance'])),
            ('connect latency ms p50/p99/max',
             '/'.join(_fmt(c['connect_latency_ms'][k]) for k in ('p50', 'p99', 'max'))),
            ('connect errors', _fmt(c['errors']) or '0')]
    z = result.get('compression')
    if z:
        rows.append(('permessage-deflate offered / negotiated',
                     f"{'yes' if z['offered'] else 'no'} / {z['negotiated']} of "
                     f"{z['websocket_connections']} WebSockets"))
    return rows


def selftest_rows(s) -> List[tuple]:
    if not s:
        return []
    return [('selftest ceiling', f"{s['messages_per_second']:,} messages/s received "
             f"by one generator process at {s['cpu_fraction']:.0%} of a core "
             f"({s['clients']} clients, compression negotiated on "
             f"{s['compression_negotiated']})"),
            ('selftest per CPU-second', f"{_fmt(s.get('messages_per_cpu_second'))} "
             f"messages per second of the generator's CPU"),
            ('selftest minimum', f"{s['min_rate']:,.0f} messages per CPU-second: "
             f"{'passed' if s['passed'] else 'FAILED'}")]


def delivery_rows(d) -> List[tuple]:
    if not d:
        return []
    ratio = d['delivery_ratio']
    rows = [('broadcasts sent / acked', f"{d['sent']} / {d['acked']}"),
            ('delivery ratio', '-' if ratio is None else f'{ratio:.6f}'),
            ('received / expected', f"{d['received']:,} / {d['expected']:,}"),
            ('duplicates / out of order', f"{d['duplicates']} / {d['out_of_order']}"),
            ('delivered msg/s', _fmt(d['delivered_per_second'])),
            ('latency sampled on', f"{d.get('latency_sampled_members', '-')} of "
             f"{d['members']} members"),
            ('same / cross-instance deliveries (sampled)',
             f"{d['same_instance_deliveries']:,} / {d['cross_instance_deliveries']:,}")]
    for k in ('all', 'same_instance', 'cross_instance'):
        lat = d['latency_ms'][k]
        rows.append((f'latency ms {k} p50/p90/p99/max',
                     '/'.join(_fmt(lat[p]) for p in ('p50', 'p90', 'p99', 'max'))))
    return rows


def reconnect_rows(result: dict) -> List[tuple]:
    rows = []
    r = result.get('reconnect')
    if r:
        t = r['time_to_back_and_receiving_ms']
        rows += [('killed', f"{r['victim']} ({r['mode']} via {r['controller']}) at "
                            f"{r['kill_at_s']}s"),
                 ('affected / back and receiving',
                  f"{r['affected_clients']} / {r['back_and_receiving']}"),
                 (f"back within {r['deadline_s']:g}s", f"{_fmt(r['pct_back_within_deadline'])}%"),
                 ('back+receiving ms p50/p99/max',
                  '/'.join(_fmt(t[p]) for p in ('p50', 'p99', 'max'))),
                 ('landed after', _fmt(r['landed_after'])),
                 ('missed per affected client p50/p99/max',
                  '/'.join(_fmt(r['missed_per_affected_client'][p])
                           for p in ('p50', 'p99', 'max'))),
                 ('missed total affected / unaffected',
                  f"{r['missed_total_affected']} / {r['missed_total_unaffected']}")]
    s = result.get('restore')
    if s:
        rows.append(('restored; new clients landed',
                     'restore failed' if 'error' in s else _fmt(s['probe_landed'])))
    return rows


def recovery_rows(result: dict) -> List[tuple]:
    """Connection-state recovery and losses of reconnect, redis-outage and
    rolling-restart."""
    rows = []
    o = result.get('redis_outage')
    if o:
        rows += [('redis stopped', f"{o['outage_s']}s at {o['stop_at_s']}s via {o['controller']}"),
                 ('cross-instance max latency / resumed after Redis',
                  f"{_fmt(o['cross_latency_max_s'])}s / {_fmt(o['resumed_after_redis_s'])}s")]
    g = result.get('rolling_restart')
    if g:
        rows += [('rolling restart', f"{g['took_s']}s: " + '; '.join(g['steps']))]
    for r in (result.get('reconnect'), o, g):
        if r and 'recovered_sessions' in r:
            rows += [('lost connection / back and receiving',
                      f"{r['lost_connection']} / {r['back_and_receiving']}"),
                     ('recovered sessions / new sessions / replayed',
                      f"{r['recovered_sessions']} / {r['new_sessions']} / {r['replayed']}"),
                     ('missed (all clients) / duplicated',
                      f"{r['missed_total_affected'] + r['missed_total_unaffected']}"
                      f" / {r['duplicates']}")]
            if r is not result.get('reconnect'):
                t = r['time_to_back_and_receiving_ms']
                rows.append(('back+receiving ms p50/p99/max',
                             '/'.join(_fmt(t[p]) for p in ('p50', 'p99', 'max'))))
    return rows


def ramp_rows(m) -> List[tuple]:
    if not m:
        return []
    rows = [('still connected after hold', _fmt(m['still_connected']))]
    for name, mem in m['memory'].items():
        rows.append((f'{name} RSS MiB before/after, KiB/conn',
                     f"{_fmt(mem['rss_before_mib'])} / {_fmt(mem['rss_after_mib'])}"
                     f", {_fmt(mem['kib_per_connection'])}"))
    return rows


def cpu_rows(result: dict) -> List[tuple]:
    rows = []
    for label, cpus in result.get('generator_cpu', {}).items():
        rows.append((f'generator CPU ({label})',
                     ' '.join(f'{c:.0%}' for c in cpus) + ' of a core per process'))
    for label, lags in result.get('generator_loop_lag_ms', {}).items():
        rows.append((f'generator loop lag ms p99 ({label})',
                     ' '.join(_fmt(x['p99']) for x in lags)))
    cc = result.get('cluster_cpu')
    if cc:
        rows.append((f"cluster CPU ({cc['window']})", ' '.join(
            f'{n} {v:.0%}' for n, v in cc['fraction_of_a_core'].items())))
    mc = result.get('machine_cpu')
    if mc:
        rows.append((f"machine CPU ({mc['window']})",
                     f"{mc['busy_fraction']:.0%} busy (user {mc.get('user', 0):.0%}, "
                     f"system {mc.get('system', 0):.0%}, softirq {mc.get('softirq', 0):.0%}, "
                     f"steal {mc.get('steal', 0):.0%})"))
    return rows


def slow_consumer_rows(sc) -> List[tuple]:
    if not sc:
        return []
    rows = []
    for label, key in (('without', 'baseline'), ('with', 'with_slow_consumer')):
        w = sc[key]
        rows.append((f'others {label} the slow consumer: ratio, p50/p99 ms',
                     f"{_fmt(w['delivery_ratio'])}, {_fmt(w['latency_ms']['p50'])}/"
                     f"{_fmt(w['latency_ms']['p99'])}"))
    rows.append(('p99 change with the slow consumer', '-' if sc['p99_change'] is None
                 else f"{sc['p99_change']:+.0%}"))
    rows.append(('slow consumer (on instance)', f"{sc['slow_instance']}: "
                 f"{sc['slow_socket_read_after']['ended']}, socket "
                 f"{sc['slow_socket_at_end']['state']} with "
                 f"{_fmt(sc['slow_socket_at_end']['unread_bytes'])} bytes unread"))
    timeline = sc['rss_timeline']
    if timeline:
        first, last = timeline[0]['rss_mib'], timeline[-1]['rss_mib']
        peak = {n: max(s['rss_mib'].get(n, 0) for s in timeline) for n in first}
        rows.append(('instance RSS MiB first/peak/last', ', '.join(
            f'{n} {first[n]}/{peak[n]}/{last.get(n, "-")}' for n in first)))
    return rows


def summary_table(result: dict) -> str:
    rows = summary_rows(result)
    width = max(len(k) for k, _ in rows)
    return '\n'.join(f'{k:<{width}}  {v}' for k, v in rows)


def write_json(result: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, sort_keys=False) + '\n')
    return path


def plot(result: dict, stem: Path) -> List[Path]:
    """PNG plots next to the JSON: latency CDF and reconnect timeline."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    out = []
    cdf = result.get('latency_cdf')
    if cdf and any(cdf.values()):
        fig, ax = plt.subplots(figsize=(7, 4))
        for label, points in cdf.items():
            if points:
                ax.plot([x for x, _ in points], [y for _, y in points], label=label)
        ax.set_xscale('log')
        ax.set_xlabel('delivery latency (ms, log scale)')
        ax.set_ylabel('fraction of deliveries')
        ax.axhline(0.99, color='grey', lw=0.5, ls=':')
        ax.set_title(_title(result, 'broadcast latency CDF'))
        out.append(_save(plt, fig, ax, stem, '-latency-cdf.png'))
    tl = result.get('timeline')
    if tl and tl.get('t') and result['scenario'] in ('reconnect', 'redis-outage',
                                                     'rolling-restart'):
        fig, ax = plt.subplots(figsize=(7, 4))
        styles = ['-', '--', '-.', ':']
        for k, (inst, series) in enumerate(tl['instances'].items()):
            # Instances often hold equal counts: vary the dash so none hides.
            ax.step(tl['t'], series, where='post', label=inst,
                    ls=styles[k % len(styles)], lw=1.5 + 0.5 * (k % 2))
        if tl.get('kill_at') is not None:
            r = result.get('reconnect', {})
            ax.axvline(tl['kill_at'], color='red', ls='--',
                       label=f"{r.get('mode', 'kill')} {r.get('victim', '')}")
        ax.set_xlabel('seconds since the broadcast started')
        ax.set_ylabel('connected clients')
        ax.set_title(_title(result, 'connected clients per instance'))
        out.append(_save(plt, fig, ax, stem, '-timeline.png'))
    return out


def _save(plt, fig, ax, stem, suffix):
    """Legend, grid, write the PNG next to the JSON result, free the figure."""
    ax.legend()
    ax.grid(alpha=0.3)
    path = stem.with_name(stem.name + suffix)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _title(result, what):
    c = result['config']
    return (f"{what}: {c['clients']} clients, {c['rate']:g} broadcasts/s, "
            f"{result['transport']['asked']}")


def missing_fields(result: dict) -> List[str]:
    return [f for f in REQUIRED_FIELDS if f not in result]
