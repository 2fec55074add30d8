"""``python -m benches``: the same as ``python benches/run.py``."""

import sys

from benches.run import main

sys.exit(main())
