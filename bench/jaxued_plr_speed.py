"""Time JaxUED's own maze PLR example (examples/maze_plr.py) per update, run as is.

Run with the separate JaxUED venv (pip install jaxued distrax six), never ours:
    /work/main/.peers/jaxued-venv/bin/python bench/jaxued_plr_speed.py PATH/TO/maze_plr.py \
        --updates 10 -- [maze_plr.py flags]
wandb is replaced by a stub that records what the script logs; checkpointing is off and
evaluation is cut to one attempt on one maze so the timing is the training updates. The
script's first chunk includes compilation; the second is reported. Prints one JSON line.
"""

import json
import os
import runpy
import sys
import time
import types

os.environ.setdefault(  # the same single-threaded XLA CPU flags rlfoundry uses
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

script, rest = sys.argv[1], sys.argv[2:]
updates = 10
if rest[:1] == ["--updates"]:
    updates, rest = int(rest[1]), rest[2:]
if rest[:1] == ["--"]:
    rest = rest[1:]

logged = []
chunk_started = [time.perf_counter()]


class _Config(dict):
    def as_dict(self):
        return dict(self)


def _init(config=None, **_):
    stub.config = _Config(config)
    return types.SimpleNamespace()


def _log(d, *a, **k):
    now = time.perf_counter()
    logged.append({"num_updates": int(d["num_updates"]), "seconds": now - chunk_started[0]})
    chunk_started[0] = time.perf_counter()


class _Anything:
    def __init__(self, *a, **k):
        pass


import jax  # noqa: E402

for _name in ("tree_map", "tree_leaves", "tree_flatten", "tree_unflatten", "tree_structure"):
    if not hasattr(jax, _name):  # removed from jax; the PyPI jaxued 0.0.1 still calls them
        setattr(jax, _name, getattr(jax.tree_util, _name))

stub = types.ModuleType("wandb")
stub.init, stub.log, stub.define_metric = _init, _log, lambda *a, **k: None
stub.Image = stub.Video = _Anything
sys.modules["wandb"] = stub

sys.argv = [script, "--run_name", "speed", "--checkpoint_save_interval", "0",
            "--eval_num_attempts", "1", "--eval_levels", "SixteenRooms",
            "--eval_freq", str(updates), "--num_updates", str(2 * updates), *rest]
t0 = time.perf_counter()
runpy.run_path(script, run_name="__main__")
first, second = logged[0], logged[1]
print(json.dumps({"jaxued_seconds_per_update": second["seconds"] / updates,
                  "jaxued_first_chunk_seconds": first["seconds"], "updates_timed": updates,
                  "argv": sys.argv[1:]}))
