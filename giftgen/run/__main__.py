"""``python -m giftgen.run JOB.json``: run one stage's job in this process (``giftgen.run.jobs.main``); the run
starts stages this way when it isolates them."""

import sys

from giftgen.run.jobs import main

sys.exit(main())
