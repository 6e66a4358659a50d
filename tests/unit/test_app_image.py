"""compose/app_image.py without Docker: APP_PATH checked in one sentence that
names it, the application image's name, and compose/render.py pointing every
instance at that image."""
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    path = ROOT / 'compose' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'compose_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


app_image = _load('app_image')
render = _load('render')


@pytest.mark.parametrize('case, says', [('missing', 'is not a directory'),
                                        ('empty', 'has no requirements.txt')])
def test_a_bad_app_path_stops_in_one_sentence_naming_it(tmp_path, capsys, case, says):
    app_path = tmp_path / case
    if case == 'empty':
        app_path.mkdir()
    assert app_image.main(['--check', '--app-path', str(app_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f'APP_PATH={app_path} {says}' in lines[0], lines


def test_an_app_path_with_requirements_passes_the_check(tmp_path):
    (tmp_path / 'requirements.txt').write_text('# nothing beyond the kit\n')
    assert app_image.main(['--check', '--app-path', str(tmp_path)]) == 0


def test_the_name_needs_only_the_directory(tmp_path, capsys):
    assert app_image.main(['--name', '--app-path', str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith('socketio-kit-app:local-')


def test_one_image_per_application_named_after_the_kits():
    here = ROOT / 'examples' / 'teamchat'
    name = app_image.image_name('socketio-kit-app:local', here)
    assert re.fullmatch(r'socketio-kit-app:local-teamchat-[0-9a-f]{8}', name)
    assert app_image.image_name('socketio-kit-app:local', here) == name
    assert app_image.image_name('socketio-kit-app:local', ROOT / 'x' / 'teamchat') != name
    assert app_image.image_name('registry.example.com:5000/kit/app', here).startswith(
        'registry.example.com:5000/kit/app:latest-teamchat-')
    assert app_image.image_name('kit:v1', Path('/srv/My App!')).startswith('kit:v1-my-app-')


def test_relative_app_paths_are_the_checkouts():
    assert app_image.app_dir('examples/teamchat') == ROOT / 'examples' / 'teamchat'


def test_render_points_every_instance_at_the_applications_image():
    addresses = {'app1': '172.30.87.11', 'app2': '172.30.87.12'}
    services = yaml.safe_load(
        render.instances_yaml('172.30.87.0/24', addresses, 'x' * 64, 'kit:v1-teamchat-12345678')
        .replace('!reset', ''))['services']
    for name in addresses:
        assert services[name]['image'] == 'kit:v1-teamchat-12345678'
        assert services[name]['pull_policy'] == 'never'
        assert 'build' in services[name]  # reset: compose never builds it
    plain = yaml.safe_load(render.instances_yaml('172.30.87.0/24', addresses, 'x' * 64)
                           .replace('!reset', ''))['services']
    assert 'image' not in plain['app1'] and 'build' not in plain['app1']
