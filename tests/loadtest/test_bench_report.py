"""BENCHMARKS.md says what ran: thresholds, shape and machine come from the
runs' records and the bench's options, not from fixed phrases."""
import json
from pathlib import Path

from loadtest import cli
from loadtest.bench.markdown import write_markdown
from loadtest.bench.results import Results, passes
from loadtest.control import Controller


def test_markdown_states_what_ran(server, tmp_path):
    out = tmp_path / 'results' / 'sweep-x-60.json'
    result = cli.run(['broadcast', '--url', server, '-c', '6', '-s', '2', '-r', '10', '-d', '1',
                      '--drain', '0.5', '--max-cpu', '0.7', '--max-lag-ms', '40',
                      '--latency-every', '3', '-q', '--out', str(out)], Controller())
    options = {'out_dir': str(tmp_path), 'p99_ms': 123.0}
    results = Results({'command': 'python -m loadtest.bench --test', 'started': 0,
                       'clusters': {'x': 'one echo server'}, 'options': options})
    results.add('sweep-x-60', 'sweep', 'x', result)
    results.save(tmp_path / 'results')
    md = tmp_path / 'BENCHMARKS.md'
    write_markdown(Results.load(tmp_path / 'results'), md, tmp_path / 'no-notes.md')
    text = md.read_text()
    cores = result['machine']['cores']
    assert f'- {cores} cores' in text
    assert 'more than 70% of a core' in text and 'more than 40 ms' in text
    assert 'p99 under 123 ms' in text and 'one client in 3 of each process' in text
    assert 'one room of 6 clients' in text and 'for 1 s' in text
    assert '85%' not in text and '100 ms' not in text and 'same 2 cores' not in text
    assert 'Cluster `x`: one echo server.' in text
    assert ('yes' if passes(result, 123.0) else '**no**') in text
    assert json.loads((tmp_path / 'results' / 'summary.json').read_text())['runs']
    assert Path(result['out']).exists()
