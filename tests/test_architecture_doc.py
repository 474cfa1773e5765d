"""ARCHITECTURE.md names files that exist (it walks readers through the code by file name)."""
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_file_architecture_md_names_exists():
    with open(os.path.join(REPO, "ARCHITECTURE.md")) as f:
        text = f.read()
    paths = sorted(set(re.findall(r"`([a-z_/]+\.py)", text)))
    assert len(paths) >= 30
    missing = [p for p in paths
               if not os.path.isfile(os.path.join(REPO, p if p.startswith("tools/") else os.path.join("seg_research", p)))]
    assert not missing
