"""deploy/k8s: every overlay builds with `kubectl kustomize`, validates against
the Kubernetes schemas (kubernetes-validate, strict: no unknown field), and
says what the design needs: stable pod names, DNS routing, drain, limits."""
import copy
import re
import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from nginx import k8s
from tests.support import ROOT

K8S = ROOT / 'deploy' / 'k8s'
OVERLAYS = {'base': K8S / 'base', 'dev': K8S / 'overlays' / 'dev',
            'production': K8S / 'overlays' / 'production'}
# The oldest Kubernetes the manifests claim (policy/v1 PDB, autoscaling/v2
# HPA) and the newest schema kubernetes-validate has.
VERSIONS = ('1.27.0', '1.37.0')
APP = 'socketio-app'
NGINX = 'socketio-nginx'
REDIS = 'socketio-redis'


def build(path) -> list:
    kubectl = shutil.which('kubectl')
    assert kubectl, 'kubectl is missing: make k8s-deps installs it'
    out = subprocess.run([kubectl, 'kustomize', str(path)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope='module', params=list(OVERLAYS))
def overlay(request):
    return request.param, build(OVERLAYS[request.param])


def find(docs, kind, name=None):
    found = [d for d in docs if d['kind'] == kind and name in (None, d['metadata']['name'])]
    assert found, (kind, name)
    return found[0] if name else found


def pod_spec(workload) -> dict:
    return workload['spec']['template']['spec']


def test_every_document_validates_strictly(overlay):
    _, docs = overlay
    for version in VERSIONS:
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_refuses_an_unknown_field():
    docs = build(OVERLAYS['base'])
    broken = copy.deepcopy(find(docs, 'StatefulSet', 'app'))
    pod_spec(broken)['containers'][0]['livenessprobe'] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_instances_are_a_statefulset_named_like_their_sids(overlay):
    _, docs = overlay
    app = find(docs, 'StatefulSet', 'app')
    governing = find(docs, 'Service', app['spec']['serviceName'])
    assert governing['spec']['clusterIP'] == 'None'
    # Every pod keeps its DNS name, ready or not: its sessions stay routed.
    assert governing['spec']['publishNotReadyAddresses'] is True
    pool = find(docs, 'Service', 'app-pool')
    assert pool['spec']['clusterIP'] == 'None'
    assert not pool['spec'].get('publishNotReadyAddresses')
    env = {e['name']: e for e in pod_spec(app)['containers'][0]['env']}
    assert env['INSTANCE_NAME']['valueFrom']['fieldRef']['fieldPath'] == 'metadata.name'
    # Pod names app-0, app-1 are valid instance names (socketio_kit/config/settings.py).
    from socketio_kit.config import INSTANCE_NAME_RE
    assert INSTANCE_NAME_RE.match(f'{app["metadata"]["name"]}-12345')


def test_probes_drain_and_grace(overlay):
    _, docs = overlay
    spec = pod_spec(find(docs, 'StatefulSet', 'app'))
    app = spec['containers'][0]
    assert app['readinessProbe']['httpGet']['path'] == '/_kit/healthz'
    # Liveness is separate and lenient: a Redis outage (503 on /_kit/healthz)
    # must not restart every instance.
    assert 'httpGet' not in app['livenessProbe']
    live = app['livenessProbe']
    assert live['periodSeconds'] * live['failureThreshold'] >= 30
    pre_stop = app['lifecycle']['preStop']['exec']['command']
    assert pre_stop[0] == 'sleep'
    drain = int(re.search(r'^graceful_timeout = (\d+)$',
                          (ROOT / 'socketio_kit' / 'gunicorn_conf.py').read_text(), re.M).group(1))
    assert spec['terminationGracePeriodSeconds'] > int(pre_stop[1]) + drain + 5


def test_every_container_is_non_root_read_only_and_bounded(overlay):
    _, docs = overlay
    for workload in [d for d in docs if d['kind'] in ('StatefulSet', 'Deployment')]:
        spec = pod_spec(workload)
        assert spec['securityContext']['runAsNonRoot'] is True
        assert spec['securityContext']['runAsUser'] != 0
        assert spec['automountServiceAccountToken'] is False
        for container in spec['containers']:
            context = container['securityContext']
            assert context['readOnlyRootFilesystem'] is True
            assert context['allowPrivilegeEscalation'] is False
            assert context['capabilities']['drop'] == ['ALL']
            resources = container['resources']
            assert {'cpu', 'memory'} <= set(resources['requests'])
            assert 'memory' in resources['limits']


def test_disruption_budget_and_autoscaler_target_the_instances(overlay):
    _, docs = overlay
    pdb = find(docs, 'PodDisruptionBudget', 'app')
    assert pdb['spec']['maxUnavailable'] == 1
    assert pdb['spec']['selector']['matchLabels'] == {'app.kubernetes.io/name': APP}
    hpa = find(docs, 'HorizontalPodAutoscaler', 'app')
    assert hpa['spec']['scaleTargetRef'] == {'apiVersion': 'apps/v1',
                                             'kind': 'StatefulSet', 'name': 'app'}
    assert hpa['spec']['metrics'][0]['resource']['name'] == 'cpu'
    assert hpa['spec']['minReplicas'] >= 3


def _allowed_from(docs, target_label):
    """Pod labels the NetworkPolicies let in to pods labelled target_label."""
    sources = []
    for policy in find(docs, 'NetworkPolicy'):
        selector = policy['spec']['podSelector'].get('matchLabels', {})
        if selector.get('app.kubernetes.io/name') != target_label:
            continue
        for rule in policy['spec'].get('ingress', []):
            sources += [peer.get('podSelector', {}).get('matchLabels', {})
                        for peer in rule.get('from', [{}])]
    return sources


def test_network_policies_let_only_nginx_to_the_app_and_only_the_app_to_redis(overlay):
    name, docs = overlay
    deny = find(docs, 'NetworkPolicy', 'default-deny-ingress')
    assert deny['spec'] == {'podSelector': {}, 'policyTypes': ['Ingress']}
    assert _allowed_from(docs, APP) == [{'app.kubernetes.io/name': NGINX}]
    if name == 'dev':  # the overlay with Redis in the cluster
        assert _allowed_from(docs, REDIS) == [{'app.kubernetes.io/name': APP}]
        find(docs, 'StatefulSet', 'redis')


def test_nginx_config_is_the_rendered_dns_routing(overlay):
    _, docs = overlay
    assert k8s.main(['--check']) == 0
    conf = find(docs, 'ConfigMap')
    text = next(c['data']['nginx.conf'] for c in conf if 'nginx.conf' in c.get('data', {}))
    assert text == k8s.conf()
    # Only app-<digits> is ever looked up: the map captures digits only.
    patterns = re.findall(r'"~\^(?:/_kit/instance/)?\(\?<\w+>([^)]*)\)', text)
    assert patterns and set(patterns) == {'app-[0-9]{1,5}'}
    assert 'resolver kube-dns.kube-system.svc.cluster.local' in text
    nginx = pod_spec(find(docs, 'Deployment', 'nginx'))['containers'][0]
    assert nginx['ports'][0]['containerPort'] == int(k8s.LISTEN)


def test_production_uses_an_external_redis_from_a_secret():
    docs = build(OVERLAYS['production'])
    assert all(d['metadata']['name'] != 'redis' for d in docs)
    app = pod_spec(find(docs, 'StatefulSet', 'app'))['containers'][0]
    env = {e['name']: e for e in app['env']}
    assert env['REDIS_URL']['valueFrom']['secretKeyRef'] == {
        'name': 'socketio-redis-external', 'key': 'url'}
    assert 'REDIS_PASSWORD_FILE' not in env
    assert not app['image'].startswith('socketio-kit-app')  # a registry's image
    ingress = find(docs, 'Ingress', 'socketio')
    backend = ingress['spec']['rules'][0]['http']['paths'][0]['backend']['service']
    assert backend['name'] == 'socketio'


def test_production_requires_tokens_and_its_secret():
    """The production overlay defaults to AUTH_MODE=jwt, and an instance
    without the auth Secret does not start; dev keeps the tokenless demo."""
    for name, mode, optional in (('production', 'jwt', False), ('dev', None, True)):
        docs = build(OVERLAYS[name])
        env = next(
            d for d in docs if d['kind'] == 'ConfigMap'
            and d['metadata']['name'].startswith('app-env'))['data']
        assert env.get('AUTH_MODE') == mode, (name, env)
        volumes = {v['name']: v for v in pod_spec(find(docs, 'StatefulSet', 'app'))['volumes']}
        assert volumes['auth-secret']['secret'].get('optional', False) is optional, name


def test_an_overlay_points_the_instances_at_an_applications_image(tmp_path):
    """README "Kubernetes", your application: its overlay, as the README
    gives it, over a copy of deploy/k8s. The instances run the application's
    image with its APP and APP_PATH, everything else is production's; the
    base serves the demo."""
    base = {d['metadata']['name'].rsplit('-', 1)[0]: d['data'] for d in build(OVERLAYS['base'])
            if d['kind'] == 'ConfigMap'}['app-env']
    assert (base['APP'], base['APP_PATH']) == ('demo.app:sio', '')
    text = (ROOT / 'README.md').read_text()
    found = re.search(r'```yaml\n(# deploy/k8s/overlays/teamchat/kustomization\.yaml\n.*?)```',
                      text, re.S)
    assert found, 'README "Kubernetes" has no overlay for an application'
    copy_ = tmp_path / 'k8s'
    shutil.copytree(K8S, copy_)
    (copy_ / 'overlays' / 'teamchat').mkdir()
    (copy_ / 'overlays' / 'teamchat' / 'kustomization.yaml').write_text(found.group(1))
    docs = build(copy_ / 'overlays' / 'teamchat')
    for version in VERSIONS:
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)
    app = pod_spec(find(docs, 'StatefulSet', 'app'))['containers'][0]
    assert app['image'] == 'registry.example.com/teamchat:1.0'
    env_name = app['envFrom'][0]['configMapRef']['name']
    env = find(docs, 'ConfigMap', env_name)['data']
    assert (env['APP'], env['APP_PATH']) == ('app:app', '/srv/app')
    assert env['AUTH_MODE'] == 'jwt'  # production's settings stay
    production = pod_spec(find(build(OVERLAYS['production']), 'StatefulSet', 'app'))
    assert {k: v for k, v in app.items() if k not in ('image', 'envFrom')} == \
        {k: v for k, v in production['containers'][0].items() if k not in ('image', 'envFrom')}
