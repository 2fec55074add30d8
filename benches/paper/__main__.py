"""``python -m benches.paper``: the same as ``python benches/paper/run.py``."""

import sys

from benches.paper.run import main

sys.exit(main())
