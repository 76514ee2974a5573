"""``python -m connector.bench`` runs the benchmark."""

import sys

from connector.bench.run import main

sys.exit(main())
