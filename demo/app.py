"""The demo application: the contract (demo/contract.py) on a kit server with
the strict input shape (`strict_events=True`: one object per event, no
binary). `APP=demo.app:sio` is the kit's default."""
import socketio_kit
from demo.contract import register

sio = socketio_kit.Server(strict_events=True)
register(sio)
