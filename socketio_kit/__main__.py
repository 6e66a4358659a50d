"""`python -m socketio_kit`: the one start command of an instance, in native
mode and in the containers. gunicorn, one worker (socketio_kit/gunicorn_conf.py),
serving the application APP names; configuration comes from the environment."""
import os
import sys


def main():
    argv = [sys.executable, '-m', 'gunicorn', '-c', 'python:socketio_kit.gunicorn_conf',
            'socketio_kit.wsgi:application']
    os.execv(sys.executable, argv)


if __name__ == '__main__':
    main()
