#!/usr/bin/env python
"""``tools/train_net.py`` with the tests' models registered (:mod:`run_tool`): the tests start this script where a
user starts the tool, with the same arguments, also under torchrun and with ``--num-gpus``."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run_tool  # noqa: E402  (registers the test models)

if __name__ == "__main__":
    run_tool.run(os.path.join(run_tool.REPO, "tools", "train_net.py"), sys.argv[1:])
