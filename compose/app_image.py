"""Build the image of an application: the kit's image, plus APP_PATH and its requirements.

    python3 compose/app_image.py --app-path DIR [--app MODULE:ATTR] [--kit-image IMAGE]
    python3 compose/app_image.py --app-path DIR [--kit-image IMAGE] --name
    python3 compose/app_image.py --app-path DIR --check

compose/up and compose/swarm-up run it when APP_PATH is set (and `--check` it
first, before anything is built); compose/run-compose asks it for the image's
`--name`, which every instance then runs. The application's requirements
cannot be installed when an instance starts (no package index answers inside
the containers here, and a start should not depend on one anyway), so they go
into an image, one per application:

1. the kit's image (APP_IMAGE, socketio-kit-app:local), built by compose as
   without APP_PATH;
2. wheels of APP_PATH/requirements.txt, built on the host (`pip wheel`, which
   reaches the index), constrained to the versions installed in the kit's
   image (its /srv/kit/constraints.txt), so an application that names
   python-socketio or gunicorn gets the kit's, never a replacement;
3. compose/app/Dockerfile.app on a context staged in
   compose/.generated/apps/NAME/ (app/: a copy of APP_PATH without .git,
   virtualenvs and caches; wheels/): the wheels installed with
   `--no-index --find-links`, the application copied to /srv/app.

The image is named after the kit's image, the directory and a hash of its
absolute path (socketio-kit-app:local-teamchat-1a2b3c4d), so each application
keeps one image, replaced by every build, and two checkouts never share one.
Every mistake stops with one sentence naming the variable.
"""
import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / 'compose' / '.generated' / 'apps'
DOCKERFILE = ROOT / 'compose' / 'app' / 'Dockerfile.app'
KIT_IMAGE = 'socketio-kit-app:local'  # compose.yaml's APP_IMAGE default
CONSTRAINTS = '/srv/kit/constraints.txt'  # written by compose/app/Dockerfile
# Not part of an application: version control, virtualenvs, caches.
IGNORED = ('.git', '.hg', '.svn', '.venv', 'venv', '__pycache__', '*.pyc',
           '.pytest_cache', '.mypy_cache', '.ruff_cache', 'node_modules')


class AppImageError(Exception):
    """A mistake in APP_PATH, APP or the build, said in one sentence."""


def app_dir(app_path: str, requirements: bool = True) -> Path:
    """APP_PATH as an absolute directory (that holds a requirements.txt)."""
    if not app_path:
        raise AppImageError('APP_PATH is not set; set it to the directory that holds '
                            'your application (and its requirements.txt).')
    path = Path(app_path)
    path = (path if path.is_absolute() else ROOT / path).resolve()
    if not path.is_dir():
        raise AppImageError(f'APP_PATH={app_path} is not a directory; set it to the '
                            f'directory that holds your application.')
    if requirements and not (path / 'requirements.txt').is_file():
        raise AppImageError(f'APP_PATH={app_path} has no requirements.txt; add one that '
                            f'lists what your application needs beyond the kit (a '
                            f'comment line if nothing).')
    return path


def image_name(kit_image: str, path: Path) -> str:
    """The application's image: the kit's name, its tag + the app's directory."""
    name, tag = kit_image, 'latest'
    if ':' in kit_image.rsplit('/', 1)[-1]:
        name, tag = kit_image.rsplit(':', 1)
    slug = re.sub(r'[^a-z0-9_.-]+', '-', path.name.lower()).strip('-.') or 'app'
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    return f'{name}:{tag}-{slug[:40]}-{digest}'


def run(args, what: str, **kwargs) -> subprocess.CompletedProcess:
    """A command that must succeed; its output is shown when it fails."""
    done = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    if done.returncode:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise AppImageError(f'{what} failed (exit {done.returncode}, output above).')
    return done


def kit_image_facts(kit_image: str):
    """The kit image's Python (major.minor) and its installed packages."""
    probe = ('import sys; print("%d.%d" % sys.version_info[:2]); '
             f'print(open({CONSTRAINTS!r}).read())')
    out = run(['docker', 'run', '--rm', '--entrypoint', 'python3', kit_image, '-c', probe],
              f'reading {CONSTRAINTS} from {kit_image}').stdout
    version, _, constraints = out.partition('\n')
    return version.strip(), constraints


def build_wheels(path: Path, stage: Path, kit_image: str):
    """Wheels of requirements.txt, built on the host, kept while unchanged."""
    version, constraints = kit_image_facts(kit_image)
    host = '{}.{}'.format(*sys.version_info[:2])
    if host != version:
        raise AppImageError(f'PYTHON={sys.executable} is Python {host} but the kit\'s image '
                            f'has {version}; set PYTHON to a python{version} so that the '
                            f'wheels of APP_PATH/requirements.txt fit the image.')
    requirements = (path / 'requirements.txt').read_bytes()
    stamp = hashlib.sha256(requirements + constraints.encode()).hexdigest()
    wheels = stage / 'wheels'
    stamp_file = stage / 'wheels.sha256'
    if wheels.is_dir() and stamp_file.is_file() and stamp_file.read_text() == stamp:
        print(f'app-image: wheels of {path}/requirements.txt unchanged, kept')
        return
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir(parents=True)
    (stage / 'constraints.txt').write_text(constraints)
    print(f'app-image: building wheels of {path}/requirements.txt')
    # In APP_PATH, so that paths in requirements.txt mean what they mean there.
    run([sys.executable, '-m', 'pip', 'wheel', '--quiet', '--disable-pip-version-check',
         '-r', 'requirements.txt', '-c', str(stage / 'constraints.txt'), '-w', str(wheels)],
        'pip wheel -r APP_PATH/requirements.txt (the kit\'s own packages held at its versions)',
        cwd=path)
    stamp_file.write_text(stamp)


def stage_app(path: Path, stage: Path):
    """A copy of the application, readable by the image's non-root user."""
    target = stage / 'app'
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(path, target, ignore=shutil.ignore_patterns(*IGNORED), symlinks=False)
    for directory, _, files in os.walk(target):
        os.chmod(directory, 0o755)
        for name in files:
            file = Path(directory, name)
            os.chmod(file, 0o755 if os.access(file, os.X_OK) else 0o644)


def build(path: Path, app: str, kit_image: str) -> str:
    name = image_name(kit_image, path)
    stage = GENERATED / name.rsplit(':', 1)[-1]
    stage.mkdir(parents=True, exist_ok=True)
    # The kit's image first, as compose builds it without APP_PATH (the
    # `app` template that every instance extends).
    print(f'app-image: building the kit\'s image {kit_image}')
    run([str(ROOT / 'compose' / 'run-compose'), '--profile', 'template', 'build',
         '--quiet', 'app'], f'building {kit_image}',
        env={**os.environ, 'APP_IMAGE': kit_image}, cwd=ROOT)
    build_wheels(path, stage, kit_image)
    stage_app(path, stage)
    print(f'app-image: building {name} from {path}')
    run(['docker', 'build', '--quiet', '--file', str(DOCKERFILE),
         '--build-arg', f'KIT_IMAGE={kit_image}', '--build-arg', f'APP={app}',
         '--tag', name, str(stage)], f'building {name}')
    return name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--app-path', required=True, help='APP_PATH: the application\'s directory')
    parser.add_argument('--app', default='', help='APP (module:attr), set in the image')
    parser.add_argument('--kit-image', default=KIT_IMAGE,
                        help=f'APP_IMAGE: the kit\'s image (default {KIT_IMAGE})')
    parser.add_argument('--name', action='store_true',
                        help='print the application image\'s name and exit')
    parser.add_argument('--check', action='store_true',
                        help='check APP_PATH (a directory with a requirements.txt) and exit')
    args = parser.parse_args(argv)
    try:
        path = app_dir(args.app_path, requirements=not args.name)
        if args.name:
            print(image_name(args.kit_image or KIT_IMAGE, path))
            return 0
        if args.check:
            return 0
        name = build(path, args.app, args.kit_image or KIT_IMAGE)
    except AppImageError as exc:
        print(f'app-image: {exc}', file=sys.stderr)
        return 2
    print(f'app-image: {name} built')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
