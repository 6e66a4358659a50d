"""The doctor and the load test as a package: a wheel built from this
checkout, installed in a fresh virtualenv outside it, gives working
`sio-doctor` and `sio-loadtest` with only their declared dependencies."""
import json
import shutil
import subprocess
import sys
import zipfile

from native.cluster import ROOT


def run(*cmd, cwd, timeout=600):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, f'{cmd}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc.stdout


def test_wheel_installs_working_console_scripts(tmp_path):
    # Build from a copy: setuptools writes build/ and *.egg-info/ next to the sources.
    src = tmp_path / 'src'
    src.mkdir()
    for name in ('pyproject.toml', 'README.md'):
        shutil.copy(ROOT / name, src / name)
    for name in ('doctor', 'loadtest', 'control'):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns('__pycache__'))
    dist = tmp_path / 'dist'
    run(sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-q', '-w', dist, src, cwd=tmp_path)
    wheel, = dist.glob('socketio_kit_tools-*.whl')
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split('/')[0] for n in names if not n.split('/')[0].endswith('-info')}
    # Only the tools: not the app, the native cluster or the tests.
    assert tops == {'doctor', 'loadtest', 'control'}, tops
    assert not [n for n in names if n.startswith('loadtest/bench/')]

    venv = tmp_path / 'venv'
    run(sys.executable, '-m', 'venv', venv, cwd=tmp_path)
    run(venv / 'bin' / 'pip', 'install', '-q', wheel, cwd=tmp_path)
    installed = json.loads(run(venv / 'bin' / 'pip', 'list', '--format', 'json', cwd=tmp_path))
    names = {p['name'].lower() for p in installed}
    # Their own dependencies, none of the app's.
    assert {'picows', 'aiohttp'} <= names
    assert not names & {'python-socketio', 'eventlet', 'gevent', 'gunicorn', 'redis'}, names

    # Run from an empty directory, so nothing is imported from the checkout.
    work = tmp_path / 'elsewhere'
    work.mkdir()
    assert 'Socket.IO' in run(venv / 'bin' / 'sio-doctor', '--help', cwd=work)
    out = run(venv / 'bin' / 'sio-loadtest', 'selftest', '-c', '4', '-d', '1', '--drain', '1',
              '--min-rate', '0', '--no-plots', '-q', '--out', work / 'self.json',
              cwd=work, timeout=120)
    assert 'selftest ceiling' in out
    assert json.loads((work / 'self.json').read_text())['selftest']['messages_per_second'] > 0


def test_runtime_wheel_is_a_drop_in_server_in_a_fresh_venv(tmp_path):
    """distributions/socketio-kit: a wheel of socketio_kit alone, whose declared
    dependencies the kit's lock satisfies (pip check), importable and
    buildable outside the checkout, with python -m socketio_kit.config."""
    src = tmp_path / 'src'
    shutil.copytree(ROOT / 'distributions' / 'socketio-kit', src / 'distributions' / 'socketio-kit')
    shutil.copytree(ROOT / 'socketio_kit', src / 'socketio_kit',
                    ignore=shutil.ignore_patterns('__pycache__'))
    dist = tmp_path / 'dist'
    run(sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-q', '-w', dist,
        src / 'distributions' / 'socketio-kit', cwd=tmp_path)
    wheel, = dist.glob('socketio_kit-*.whl')
    tops = {n.split('/')[0] for n in zipfile.ZipFile(wheel).namelist()
            if not n.split('/')[0].endswith('-info')}
    assert tops == {'socketio_kit'}, tops       # not the demo, the tools or the tests

    venv = tmp_path / 'venv'
    run(sys.executable, '-m', 'venv', venv, cwd=tmp_path)
    pip = venv / 'bin' / 'pip'
    run(pip, 'install', '-q', '--no-deps', '-r', ROOT / 'requirements.txt', cwd=tmp_path)
    run(pip, 'install', '-q', '--no-deps', wheel, cwd=tmp_path)
    run(pip, 'check', cwd=tmp_path)
    work = tmp_path / 'elsewhere'
    work.mkdir()
    python = venv / 'bin' / 'python'
    assert 'INSTANCES=' in run(python, '-m', 'socketio_kit.config', '--defaults', cwd=work)
    out = run('env', 'INSTANCE_NAME=wheel1', python, '-W', 'ignore', '-c',
              'import socketio, socketio_kit; sio = socketio_kit.Server(); '
              'print(isinstance(sio, socketio.Server), sio.instance_name)', cwd=work)
    assert out.split() == ['True', 'wheel1']
