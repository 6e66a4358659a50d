"""bench/results/memory-breakdown.md from the runs' results."""
import contextlib
import importlib.metadata
import os
import platform
from pathlib import Path

from bench.memory.instance import WARMUP_CLIENTS


# -- report -------------------------------------------------------------------
def machine() -> dict:
    mem = next(line for line in Path('/proc/meminfo').read_text().splitlines()
               if line.startswith('MemTotal'))
    cpu = next((line.split(':', 1)[1].strip() for line in
                Path('/proc/cpuinfo').read_text().splitlines()
                if line.startswith('model name')), platform.machine())
    versions = {}
    for pkg in ('gunicorn', 'eventlet', 'gevent', 'greenlet',
                'python-engineio', 'python-socketio', 'redis'):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[pkg] = importlib.metadata.version(pkg)
    return {'nproc': os.cpu_count(), 'cpu': cpu,
            'ram_gib': round(int(mem.split()[1]) / 1024 / 1024, 1),
            'python': platform.python_version(), 'kernel': platform.release(),
            'versions': versions}


def render(results: dict, command: str) -> str:
    m = results['machine']
    lines = [
        '# Memory per idle WebSocket connection: where the bytes go',
        '',
        f'Measured {results["date"]} with `{command}` (bench/memory/).',
        f'Machine: {m["nproc"]} cores ({m["cpu"]}), {m["ram_gib"]} GiB RAM, '
        f'Linux {m["kernel"]}, Python {m["python"]}; '
        + ', '.join(f'{k} {v}' for k, v in m['versions'].items()) + '.',
        '',
        'One instance (one gunicorn worker) and a private redis-server on free '
        'loopback ports; clients connect straight to the instance '
        '(`transport=websocket`, no compression offered), get `welcome`, and '
        f'stay idle. {WARMUP_CLIENTS} clients come and go before the baseline. '
        'Target: 25 KiB per connection.',
        '',
        '## RSS of the worker (the real start command, `app/start`)',
        '',
        '| worker class | clients | RSS before MiB | RSS after MiB | KiB per connection | '
        'KiB/conn, second half only | connect time s |',
        '|---|---:|---:|---:|---:|---:|---:|',
    ]
    for r in results['rss']:
        lines.append(
            f'| {r["worker_class"]} | {r["clients"]:,} | '
            f'{r["rss_before_kib"] / 1024:.1f} | {r["rss_after_kib"] / 1024:.1f} | '
            f'**{r["kib_per_conn"]:.1f}** | {r["kib_per_conn_second_half"]:.1f} | '
            f'{r["connect_seconds"]} |')
    for b in results['breakdown']:
        wc = b['worker_class']
        rss = next((r for r in results['rss'] if r['worker_class'] == wc), None)
        lines += ['', f'## Breakdown, {wc} ({b["clients"]:,} clients, '
                  f'tracemalloc {b["frames"]} frames)', '',
                  '| owner | KiB per connection | blocks per connection |',
                  '|---|---:|---:|']
        for cat, (size, blocks) in b['categories'].items():
            lines.append(f'| {cat} | {size / 1024:.2f} | {blocks:.1f} |')
        lines.append(f'| **traced by tracemalloc** | '
                     f'**{b["traced_growth_per_conn"] / 1024:.2f}** | |')
        if rss:
            untracked = rss['kib_per_conn'] - b['traced_growth_per_conn'] / 1024
            lines.append(f'| untraced (RSS/conn of the plain run minus traced):'
                         f' greenlet data-stack chunks, allocator slack | '
                         f'{untracked:.2f} | |')
            lines.append(f'| **RSS per connection (plain run)** | '
                         f'**{rss["kib_per_conn"]:.2f}** | |')
        lines += ['', f'Top allocation sites ({wc}; innermost frame, then '
                  'its callers), bytes per connection:', '',
                  '| site | called from | owner | B/conn |', '|---|---|---|---:|']
        for site, chain, cat, size in b['top_sites'][:20]:
            lines.append(f'| `{site}` | `{chain}` | {cat} | {size:.0f} |')
        lines += ['', f'gc census ({wc}): objects per connection by type '
                  f'({b["gc_objects_per_conn"]:.1f} gc-tracked objects per '
                  'connection; sizes are sys.getsizeof, shallow):', '',
                  '| type | objects/conn | B/conn (shallow) |',
                  '|---|---:|---:|']
        for name, count, size in b['gc'][:20]:
            lines.append(f'| `{name}` | {count:.2f} | {size:.0f} |')
    return '\n'.join(lines) + '\n'


