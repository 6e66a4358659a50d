"""What native mode decides before it starts anything: the settings it
records for later commands, the application's requirements, and an nginx.conf
that fits this machine's open-files limit. No process is started."""
import re
import stat

import pytest

import native.cluster
from native.cluster import NGINX_SPARE_FILES, PER_INSTANCE, LocalCluster
from native.requirements import RequirementsError, install
from tests.support import TEST_SETTINGS


def cluster(tmp_path, **env) -> LocalCluster:
    return LocalCluster.on_free_ports(tmp_path / 'run', 2, {**TEST_SETTINGS, **env})


def test_the_record_holds_every_kit_setting_and_unset_ones_empty(tmp_path):
    local = cluster(tmp_path, APP='app:app', APP_PATH='examples/teamchat')
    started = local.kit_settings()
    assert started['APP'] == 'app:app' and started['APP_PATH'] == 'examples/teamchat'
    assert started['WORKER_CLASS'] == 'eventlet'
    assert started['HTTP_PORT'] == local.env['HTTP_PORT']
    # Read by the config, but not given: '' (unset) hides a later value.
    assert started['JWT_SECRET'] == ''
    assert not PER_INSTANCE & set(started)


def conf_numbers(local: LocalCluster):
    text = local.render_nginx().read_text()
    return (int(re.search(r'worker_rlimit_nofile (\d+);', text).group(1)),
            int(re.search(r'worker_connections (\d+);', text).group(1)))


def test_nginx_fits_under_the_hard_open_files_limit(tmp_path, monkeypatch):
    local = cluster(tmp_path)
    monkeypatch.setattr(native.cluster, 'open_files_limit', lambda: 20_000)
    nofile, connections = conf_numbers(local)
    assert nofile <= 20_000 and connections <= nofile - NGINX_SPARE_FILES


def test_nginx_keeps_its_setting_where_the_limit_allows(tmp_path, monkeypatch):
    local = cluster(tmp_path)
    monkeypatch.setattr(native.cluster, 'open_files_limit', lambda: None)
    # As compose and Kubernetes render it (nginx/render.py).
    assert conf_numbers(local) == (20480 + NGINX_SPARE_FILES, 20480)


@pytest.fixture
def fake_python(tmp_path):
    """A `python` that logs its arguments and exits with the code in a file."""
    log, code = tmp_path / 'calls', tmp_path / 'code'
    code.write_text('0')
    script = tmp_path / 'bin' / 'python'
    script.parent.mkdir()
    script.write_text(f'#!/bin/sh\necho "$@" >>{log}\nexit $(cat {code})\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, log, code


def test_requirements_are_installed_once_per_change(tmp_path, fake_python):
    python, log, _ = fake_python
    app = tmp_path / 'app'
    app.mkdir()
    (app / 'requirements.txt').write_text('flask\n')
    said = []
    stamps = tmp_path / 'stamps'
    assert install(str(app), str(python), stamps, said.append)
    assert not install(str(app), str(python), stamps, said.append)
    assert len(said) == 1 and said[0].startswith(f'installing {app}/requirements.txt into ')
    calls = log.read_text().splitlines()
    assert len(calls) == 1 and calls[0].startswith('-m pip install')
    # The kit's packages stay as they are: its pins are the constraints.
    assert 'python-socketio==' in (stamps / 'kit-constraints.txt').read_text()
    (app / 'requirements.txt').write_text('flask\nrequests\n')
    assert install(str(app), str(python), stamps, said.append)
    assert len(log.read_text().splitlines()) == 2


def test_nothing_to_install(tmp_path, fake_python):
    python, log, _ = fake_python
    (tmp_path / 'app').mkdir()
    assert not install(None, str(python), tmp_path / 's', print)
    assert not install(str(tmp_path / 'app'), str(python), tmp_path / 's', print)  # no file
    (tmp_path / 'app' / 'requirements.txt').write_text('# nothing beyond the kit\n')
    assert not install(str(tmp_path / 'app'), str(python), tmp_path / 's', print)
    assert not log.exists()


def test_pip_failing_is_one_sentence_and_no_stamp(tmp_path, fake_python):
    python, _, code = fake_python
    code.write_text('1')
    app = tmp_path / 'app'
    app.mkdir()
    (app / 'requirements.txt').write_text('flask==0.0.0\n')
    with pytest.raises(RequirementsError) as failed:
        install(str(app), str(python), tmp_path / 's', lambda line: None)
    message = str(failed.value)
    assert message.startswith(f'pip could not install {app}/requirements.txt into ')
    assert '(exit 1, ' in message and message.count('. ') == 0 and message.endswith('.')
    assert not list((tmp_path / 's').glob('*.sha256'))

