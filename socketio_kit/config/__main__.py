"""`python -m socketio_kit.config`: check the environment (see settings.main)."""
from socketio_kit.config.settings import main

raise SystemExit(main())
