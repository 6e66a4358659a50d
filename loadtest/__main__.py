"""`python -m loadtest SCENARIO ...` (see loadtest/cli.py)."""
from loadtest.cli import main

raise SystemExit(main())
