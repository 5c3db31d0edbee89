"""``python -m helpkit``."""

from __future__ import annotations

import sys

from helpkit.cli import main

sys.exit(main())
