#!/usr/bin/env python
"""Run detectron2's own example scripts, unchanged but for their imports, on seg_research.

    python tools/run_detectron2_scripts.py --detectron2 PATH [--ref v0.6] [--output DIR]

PATH is a detectron2 checkout (its files are read as they are) or a git directory, bare or not
(files are read with ``git show REF:path``). ``tools/train_net.py``, ``tools/plain_train_net.py``,
``tools/visualize_data.py``, ``tools/visualize_json_results.py``, ``demo/demo.py`` and
``demo/predictor.py`` are copied into ``DIR/scripts`` with ``detectron2`` replaced by
``seg_research`` in their import statements only (nothing else is touched), then each runs in a
subprocess on ``configs/Shapes/mask_rcnn_R_18_FPN_instant_test.yaml``:

1. train_net.py trains 6 iterations (with evaluation) into ``DIR/train_net``;
2. plain_train_net.py does the same with its own loop into ``DIR/plain_train_net``;
3. visualize_data.py ``--source annotation`` draws the training set (``--source dataloader``
   loops forever in detectron2's script, so it is not run);
4. visualize_json_results.py draws train_net's ``coco_instances_results.json`` on shapes_val
   (at the default 0.5 threshold some images have no prediction left);
5. demo/demo.py runs train_net's ``model_final.pth`` on the shapes_val images.

The Shapes dataset is generated on first use. Unless already set, ``SEG_DATASETS`` is
``DIR/datasets`` and the splits are small (``SEG_SHAPES_TRAIN=12``, ``SEG_SHAPES_VAL=6``,
``SEG_SHAPES_SIZE=64``). One line per script says PASS or FAIL, a failure with the tail of its
stderr; the exit code is the number of failures.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "configs" / "Shapes" / "mask_rcnn_R_18_FPN_instant_test.yaml"
SCRIPTS = ["tools/train_net.py", "tools/plain_train_net.py", "tools/visualize_data.py",
           "tools/visualize_json_results.py", "demo/demo.py", "demo/predictor.py"]
SMALL_SHAPES = {"SEG_SHAPES_TRAIN": "12", "SEG_SHAPES_VAL": "6", "SEG_SHAPES_SIZE": "64"}
_IMPORT = re.compile(r"^(\s*(?:from|import)\s+)detectron2\b", re.MULTILINE)


def rename_imports(source: str) -> str:
    """``from detectron2.x import y`` / ``import detectron2.x as z`` -> seg_research; nothing else changes."""
    return _IMPORT.sub(r"\1seg_research", source)


def file_reader(detectron2: str, ref: str) -> Callable[[str], str]:
    """A function reading a file of the detectron2 source at ``detectron2`` (checkout or git dir)."""
    root = Path(detectron2)
    if (root / "tools" / "train_net.py").is_file():
        return lambda path: (root / path).read_text()
    probe = subprocess.run(["git", "--git-dir", str(root), "rev-parse", "--verify", f"{ref}^{{commit}}"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        raise SystemExit(f"--detectron2 {detectron2}: neither a checkout (no tools/train_net.py) nor a git "
                         f"directory with ref '{ref}': {probe.stderr.strip()}")

    def read(path: str) -> str:
        return subprocess.run(["git", "--git-dir", str(root), "show", f"{ref}:{path}"],
                              capture_output=True, text=True, check=True).stdout

    return read


def write_scripts(read: Callable[[str], str], folder: Path) -> Dict[str, Path]:
    """Each script, imports renamed, as ``folder/<basename>`` (demo.py imports predictor.py beside it)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for path in SCRIPTS:
        target = folder / os.path.basename(path)
        target.write_text(rename_imports(read(path)))
        written[os.path.basename(path)] = target
    return written


def _shapes_val_images(env: Dict[str, str]) -> List[str]:
    return sorted(glob.glob(os.path.join(env["SEG_DATASETS"], "shapes", "val", "images", "*")))


def plan(scripts: Dict[str, Path], out: Path, env: Dict[str, str]) -> List[Tuple[str, Callable[[], List[str]]]]:
    """(name, argv maker) per run; argv is made just before the run (demo needs generated images)."""
    config = str(CONFIG)
    train_out = out / "train_net"
    return [
        ("train_net.py", lambda: [str(scripts["train_net.py"]), "--config-file", config,
                                  "OUTPUT_DIR", str(train_out)]),
        ("plain_train_net.py", lambda: [str(scripts["plain_train_net.py"]), "--config-file", config,
                                        "OUTPUT_DIR", str(out / "plain_train_net")]),
        ("visualize_data.py", lambda: [str(scripts["visualize_data.py"]), "--source", "annotation",
                                       "--config-file", config, "--output-dir", str(out / "visualize_data")]),
        ("visualize_json_results.py", lambda: [
            str(scripts["visualize_json_results.py"]), "--dataset", "shapes_val", "--output",
            str(out / "visualize_json_results"),
            "--input", str(train_out / "inference" / "coco_instances_results.json")]),
        ("demo.py", lambda: _demo_argv(scripts, out, train_out, env)),
    ]


def _demo_argv(scripts: Dict[str, Path], out: Path, train_out: Path, env: Dict[str, str]) -> List[str]:
    (out / "demo").mkdir(parents=True, exist_ok=True)  # a folder: demo.py writes one file per input there
    return [str(scripts["demo.py"]), "--config-file", str(CONFIG), "--input", *_shapes_val_images(env),
            "--output", str(out / "demo"), "--opts", "MODEL.WEIGHTS", str(train_out / "model_final.pth")]


def run_all(detectron2: str, ref: str, out: Path, tail: int = 25) -> int:
    env = dict(os.environ)
    env.setdefault("SEG_DATASETS", str(out / "datasets"))
    for key, value in SMALL_SHAPES.items():
        env.setdefault(key, value)
    scripts = write_scripts(file_reader(detectron2, ref), out / "scripts")
    print(f"detectron2 scripts from {detectron2} ({ref}) in {out / 'scripts'}, datasets in {env['SEG_DATASETS']}")
    failures = 0
    for name, argv in plan(scripts, out, env):
        start = time.perf_counter()
        args = argv()
        proc = subprocess.run([sys.executable, *args], cwd=str(out), env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        (out / f"{name}.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode == 0:
            print(f"PASS {name} ({seconds:.1f} s)")
            continue
        failures += 1
        print(f"FAIL {name} (exit {proc.returncode}, {seconds:.1f} s; full output in {out / (name + '.log')}):")
        for line in proc.stderr.rstrip().splitlines()[-tail:]:
            print(f"    {line}")
    print(f"{len(plan(scripts, out, env)) - failures} passed, {failures} failed")
    return failures


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detectron2", required=True, help="detectron2 checkout or git directory")
    parser.add_argument("--ref", default="v0.6", help="git ref to read the scripts from (git directory only)")
    parser.add_argument("--output", help="working folder (default: a new temporary one)")
    args = parser.parse_args(argv)
    out = Path(args.output or tempfile.mkdtemp(prefix="d2_scripts_")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return run_all(args.detectron2, args.ref, out)


if __name__ == "__main__":
    sys.exit(main())
