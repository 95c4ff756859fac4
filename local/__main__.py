"""`python -m local` (`make run`): the whole platform on http://127.0.0.1:${PORT:-3000}."""

import sys
import time

# Taken before the heavy imports, so the start-up time printed includes them.
STARTED = time.perf_counter()

from local.stack import main  # noqa: E402

sys.exit(main(STARTED))
