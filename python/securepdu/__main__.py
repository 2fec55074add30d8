"""``python -m securepdu`` runs the command line."""

import sys

from securepdu.cli import main

sys.exit(main())
