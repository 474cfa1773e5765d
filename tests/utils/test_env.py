"""keep_freed_memory: glibc malloc tuning applied to CPU runs, with an opt-out."""
import os
import platform
import subprocess
import sys

import pytest

SCRIPT = """
import ctypes, sys, torch
from seg_research.utils.env import keep_freed_memory
applied = keep_freed_memory()
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
before = libc.mallinfo2().hblkhd  # bytes in mmap-ed blocks
x = torch.empty(64 * 2**20, dtype=torch.uint8)  # 64 MiB: above glibc's largest mmap threshold
during = libc.mallinfo2().hblkhd
print(applied, during - before >= 64 * 2**20)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc malloc only")
@pytest.mark.parametrize("opt_out, expected", [(None, "True False"), ("0", "False True")])
def test_large_tensors_come_from_the_heap_unless_opted_out(opt_out, expected):
    env = {k: v for k, v in os.environ.items() if k != "SEG_KEEP_FREED_MEMORY"}
    if opt_out is not None:
        env["SEG_KEEP_FREED_MEMORY"] = opt_out
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == expected  # applied?, was the 64 MiB tensor mmap-ed?
