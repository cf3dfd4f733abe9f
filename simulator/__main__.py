"""``python -m simulator``: run the simulated refinery (see :mod:`simulator.run`)."""

import sys

from simulator.run import main

sys.exit(main(sys.argv[1:]))
