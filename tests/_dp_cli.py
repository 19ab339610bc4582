"""``python -m collapse_utils`` for tests/test_distributed.py under torchrun, with the CLI's arguments taken from
the environment (torchrun's own parser would claim abbreviations such as ``--n``)."""

import json
import os
import sys

from collapse_utils.__main__ import main

if __name__ == "__main__":
    sys.exit(main(json.loads(os.environ["DP_CLI_ARGS"])))
