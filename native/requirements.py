"""The application's requirements in the kit's virtualenv (native mode).

The instances run on the interpreter of the kit's venv, so an application
given with APP_PATH needs APP_PATH/requirements.txt installed there before it
can be imported. `make local` installs it when the file has changed since the
last install (a hash stamp in the run directory), constrained to the versions
the kit runs on (its requirements.txt), as compose/app_image.py constrains an
application's image to the kit's: an application that names python-socketio
or gunicorn gets the kit's, never a replacement.
"""
import hashlib
import re
import subprocess
from pathlib import Path
from typing import Callable, Optional

from native.processes import ROOT, ProcessError

KIT_REQUIREMENTS = ROOT / 'requirements.txt'
# A pinned line of the kit's lock file, marker included, without its hashes.
PINNED = re.compile(r'^([A-Za-z0-9][A-Za-z0-9._-]*==[^\\]+?)\s*(\\\s*)?$')
PIP_WAIT = 900.0


class RequirementsError(ProcessError):
    """pip could not install the application's requirements."""


def app_requirements(app_path: Optional[str]) -> Optional[Path]:
    """APP_PATH/requirements.txt, if APP_PATH is set and has one. A relative
    APP_PATH is the checkout's, as for the instances (they run there)."""
    if not app_path:
        return None
    path = Path(app_path)
    path = (path if path.is_absolute() else ROOT / path) / 'requirements.txt'
    return path if path.is_file() else None


def kit_constraints() -> str:
    """The kit's runtime pins (requirements.txt without its hashes)."""
    lines = (PINNED.match(line) for line in KIT_REQUIREMENTS.read_text().splitlines())
    return ''.join(f'{match.group(1)}\n' for match in lines if match)


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def install(app_path: Optional[str], python: str, stamps: Path,
            say: Callable[[str], None] = print) -> bool:
    """Install APP_PATH/requirements.txt with python's pip if it changed
    since the install stamped in stamps; True if pip ran."""
    requirements = app_requirements(app_path)
    if requirements is None:
        return False
    text = requirements.read_bytes()
    # Only comments and blank lines: nothing for pip to do.
    if not any(line.strip() and not line.strip().startswith(b'#')
               for line in text.splitlines()):
        return False
    digest = hashlib.sha256(text + b'\0' + python.encode()).hexdigest()
    path_key = hashlib.sha256(str(requirements.resolve()).encode()).hexdigest()[:16]
    stamp = stamps / f'{path_key}.sha256'
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return False
    stamps.mkdir(parents=True, exist_ok=True)
    constraints = stamps / 'kit-constraints.txt'
    constraints.write_text(kit_constraints())
    venv = Path(python).parent.parent
    say(f'installing {_shown(requirements)} into {_shown(venv)} (new or changed since '
        f'the last install; pip install -r, the kit\'s own packages kept at their versions)')
    # pip's errors go to this terminal, above the sentence below.
    try:
        returncode = subprocess.run(
            [python, '-m', 'pip', 'install', '-q', '--disable-pip-version-check',
             '-c', str(constraints), '-r', str(requirements)],
            cwd=requirements.parent, stdin=subprocess.DEVNULL, check=False,
            timeout=PIP_WAIT).returncode
        why = f'exit {returncode}, its error is above'
    except subprocess.TimeoutExpired:
        returncode, why = None, f'it had not finished after {PIP_WAIT:.0f}s'
    if returncode != 0:
        raise RequirementsError(
            f'pip could not install {_shown(requirements)} into {_shown(venv)} '
            f'({why}); fix the file (it may not pin another version of a package the '
            f'kit runs on) and try again.')
    stamp.write_text(digest + '\n')
    return True
