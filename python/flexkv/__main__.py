"""``python -m flexkv``: the ``flexkv`` command."""

import sys

from .cli import main

sys.exit(main())
