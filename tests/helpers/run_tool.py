#!/usr/bin/env python
"""Run a tool with the tests' models registered: ``python tests/helpers/run_tool.py tools/demo.py ARGS``.

Importing this module registers :mod:`tiny_semseg`'s ``TinySemSegNet``; :func:`run` then executes the tool
unchanged, as ``__main__`` code (its ``sys.argv[0]`` the tool). The process's main module stays the script
that was started (this one, or ``train_net.py`` beside it), so the workers that ``launch`` spawns import it
again, and with it the registration; torchrun starts it once per process.
"""
import os
import sys
from typing import Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tiny_semseg  # noqa: E402, F401  (registers TinySemSegNet)

#: The repository root (tools/ lies there).
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(tool: str, argv: Sequence[str]) -> None:
    """Execute the script ``tool`` with command line ``argv`` as ``python tool argv...`` would, in this process.

    Not ``runpy.run_path``: that makes the tool the process's main module, and spawned workers would then
    import the tool alone, without the registration above.
    """
    tool = os.path.abspath(tool)
    sys.argv = [tool, *argv]
    sys.path.insert(0, os.path.dirname(tool))  # as `python tool` would see it
    with open(tool) as f:
        code = compile(f.read(), tool, "exec")
    exec(code, {"__name__": "__main__", "__file__": tool, "__builtins__": __builtins__})


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2:])
