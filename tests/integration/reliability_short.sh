#!/bin/bash
# reliability_short.sh — the short form of the reliability scenarios
# (tests/reliability/, RELIABILITY.md) inside `make test`: worker kill -9
# (1,000 jobs, 3 kills), a graceful Redis restart, a hung worker and lease
# heartbeats, Redis full, an API crash, hostile HTTP and hostile handlers,
# in under a minute.  `make test-reliability` runs the long form.
RELIABILITY=short exec bash tests/reliability/run.sh
