"""Project tests: the library's test-session settings (small generated Shapes in a private
``$SEG_DATASETS``, see ``tests/conftest.py``), and every ``projects/<Name>/`` on ``sys.path``
so that its tests ``import <package>`` without installing it."""
import os
import runpy
import sys

_PROJECTS = os.path.dirname(os.path.abspath(__file__))
runpy.run_path(os.path.join(os.path.dirname(_PROJECTS), "tests", "conftest.py"))
for _name in sorted(os.listdir(_PROJECTS)):
    _project = os.path.join(_PROJECTS, _name)
    if os.path.isdir(_project) and not _name.startswith((".", "_")) and _project not in sys.path:
        sys.path.insert(0, _project)
