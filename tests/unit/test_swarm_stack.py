"""compose/swarm.py: the stack file from a merged compose model."""
import importlib.util
import json

import pytest

from tests.support import ROOT

spec = importlib.util.spec_from_file_location('swarm_stack', ROOT / 'compose' / 'swarm.py')
swarm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(swarm)

TEMPLATE = {
    'deploy': {'endpoint_mode': 'dnsrr', 'replicas': 1,
               'placement': {'max_replicas_per_node': 1}},
    'environment': {'JWT_SECRET_FILE': '/run/secrets/jwt_secret'},
    'secrets': ['jwt_secret'],
    'networks': {'edge': {'aliases': ['app-pool']}, 'back': {}},
}


def _app(name, address):
    return {'image': 'socketio-kit-app:swarm', 'build': {'context': '..'},
            'depends_on': {'redis': {'condition': 'service_healthy'}},
            'restart': 'unless-stopped', 'pull_policy': 'never',
            'environment': {'INSTANCE_NAME': name},
            'secrets': [{'source': 'redis_password'}],
            'networks': {'edge': {'ipv4_address': address}, 'back': {}}}


def _model(instances=3):
    services = {f'app{i}': _app(f'app{i}', f'172.30.87.{10 + i}')
                for i in range(1, instances + 1)}
    services['nginx'] = {
        'image': 'kit-nginx:offline', 'networks': {'edge': None},
        'ports': [{'mode': 'ingress', 'target': 80, 'published': '8090', 'protocol': 'tcp'}],
        'volumes': [{'type': 'bind', 'source': '/x/nginx.conf',
                     'target': '/etc/nginx/nginx.conf', 'read_only': True}],
        'labels': {'kit.nginx-conf-sha256': 'abc'}, 'deploy': {'mode': 'global'}}
    services['redis'] = {'image': 'kit-redis:offline', 'networks': {'back': None},
                         'volumes': [{'type': 'volume', 'source': 'redis-data',
                                      'target': '/data'}]}
    services['page'] = {'image': 'kit-nginx:offline', 'networks': {'page': None}}
    return {'name': 'socketio-kit', 'services': services, 'x-swarm-instance': TEMPLATE,
            'secrets': {'redis_password': {'file': '/x/.generated/secrets/redis_password'}},
            'volumes': {'redis-data': {'name': 'socketio-kit_redis-data'}, 'unused': {}},
            'networks': {'edge': {'name': 'socketio-kit_edge',
                                  'ipam': {'config': [{'subnet': '172.30.87.0/24'}]}},
                         'back': {'name': 'socketio-kit_back', 'internal': True},
                         'page': {'name': 'socketio-kit_page'}}}


def test_stack_runs_on_any_node_and_without_ipvs(tmp_path):
    stack = swarm.stack(_model(), 'f' * 64, 1, tmp_path)
    json.dumps(stack)
    assert set(stack['services']) == {'app1', 'app2', 'app3', 'nginx', 'redis'}
    assert stack['networks'] == {'edge': {'driver': 'overlay'},
                                 'back': {'driver': 'overlay', 'internal': True}}
    assert stack['volumes'] == {'redis-data': {}}
    nginx = stack['services']['nginx']
    assert nginx['ports'] == [{'target': 80, 'published': 8090, 'protocol': 'tcp',
                               'mode': 'host'}]
    assert 'volumes' not in nginx
    assert nginx['configs'] == [{'source': 'nginx_conf_ffffffffffff',
                                 'target': '/etc/nginx/nginx.conf', 'mode': 0o444}]
    for name in ('app1', 'app2', 'app3'):
        app = stack['services'][name]
        assert not {'build', 'depends_on', 'restart', 'pull_policy'} & set(app)
        assert app['deploy']['endpoint_mode'] == 'dnsrr'
        assert app['deploy']['placement']['constraints'] == []
        assert app['networks']['edge'] == {'aliases': ['app-pool']}
        assert app['environment']['INSTANCE_NAME'] == name
        assert app['secrets'] == [{'source': 'jwt_secret'}, {'source': 'redis_password'}]
    secret = tmp_path / 'jwt_secret'
    assert stack['secrets'] == {
        'jwt_secret': {'file': str(secret)},
        'redis_password': {'file': '/x/.generated/secrets/redis_password'}}
    assert secret.stat().st_mode & 0o777 == 0o600 and len(secret.read_text()) >= 48
    before = secret.read_text()
    swarm.stack(_model(), 'f' * 64, 1, tmp_path)
    assert secret.read_text() == before  # generated once


def test_instances_spread_over_labelled_nodes(tmp_path):
    stack = swarm.stack(_model(4), 'f' * 64, 3, tmp_path)
    slots = [stack['services'][f'app{i}']['deploy']['placement']['constraints']
             for i in range(1, 5)]
    assert slots == [[f'node.labels.socketio-kit.slot == {k}'] for k in (1, 2, 3, 1)]


def test_model_without_the_swarm_overlay_is_refused(tmp_path):
    model = _model()
    del model['x-swarm-instance']
    with pytest.raises(swarm.ConfigError, match='swarm.yaml'):
        swarm.stack(model, 'f' * 64, 1, tmp_path)
