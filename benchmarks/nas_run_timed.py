"""`nas run ARGS` as a whole process, with where its wall time went.

Runs `nas.cli.main(["run", *ARGS])` unchanged, with timers wrapped around the functions it
calls, put in as each nas module is first imported (so nothing is imported earlier than `nas run`
itself imports it): `load_data`, the main thread's waits on MLflow (`Tracker`: creating it,
run_id, logging, end), `build_model`, `train` (less the evaluations and checkpoints inside it),
`evaluate` (validation and test) and `checkpoint.save_atomic`. Imports, config and exit are the
rest of the wall time ("other" in the table). Prints the run's summary table, then one
JSON line `{"seconds": {...}}` for `train_throughput.py --part process`.

    python benchmarks/nas_run_timed.py preset=shufflenet_v1_g3 width=0.25 data.train_subset=256
"""

import time

T0 = time.perf_counter()

import functools  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

SECONDS: dict[str, float] = {}
_DEPTH = {"n": 0}


def timed(key: str, fn):
    """`fn`, adding its seconds to SECONDS[key] (outermost timed call only: no double counts)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _DEPTH["n"]:
            return fn(*args, **kwargs)
        _DEPTH["n"] += 1
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SECONDS[key] = SECONDS.get(key, 0.0) + time.perf_counter() - start
            _DEPTH["n"] -= 1

    return wrapper


class _PatchAfterImport:
    """A meta-path finder that runs `patches[name]()` right after nas module `name` executes, so
    timers go in without importing torch early (which would change what `nas run` overlaps)."""

    def __init__(self, patches: dict):
        self.patches = patches

    def find_spec(self, name, path=None, target=None):
        if name not in self.patches:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        exec_module, patch = spec.loader.exec_module, self.patches[name]

        def exec_and_patch(module):
            exec_module(module)
            patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


def main(argv: list[str]) -> int:
    def patch(module, name: str, new) -> None:
        """Replace module.name everywhere it was imported by name (`from nas.data import ...`)."""
        old = getattr(module, name)
        for mod in list(sys.modules.values()):
            if getattr(mod, "__name__", "").startswith("nas") and getattr(mod, name, None) is old:
                setattr(mod, name, new)

    def outside(fn):  # eval and checkpoint time inside train() is not train time
        def call(*args, **kwargs):
            outer = _DEPTH["n"]
            _DEPTH["n"] = 0
            try:
                return fn(*args, **kwargs)
            finally:
                _DEPTH["n"] = outer
        return call

    def patch_train(module) -> None:
        patch(module, "evaluate", outside(timed("eval", module.evaluate)))
        train = module.train

        def train_only(*args, **kwargs):
            keys = ("eval", "checkpoint", "mlflow")
            before = sum(SECONDS.get(k, 0.0) for k in keys)
            begin = time.perf_counter()
            try:
                return train(*args, **kwargs)
            finally:
                inside = sum(SECONDS.get(k, 0.0) for k in keys) - before
                SECONDS["train"] = SECONDS.get("train", 0.0) + time.perf_counter() - begin - inside

        patch(module, "train", train_only)

    def patch_tracking(module) -> None:
        tracker = module.Tracker
        for name in ("__init__", "log_params", "log_metrics", "set_tags", "log_text",
                     "log_artifact", "end", "flush"):
            if hasattr(tracker, name):
                setattr(tracker, name, timed("mlflow", getattr(tracker, name)))
        for name in ("run_id", "client", "experiment_id"):
            prop = tracker.__dict__.get(name)
            if isinstance(prop, property):
                setattr(tracker, name, property(timed("mlflow", prop.fget)))
        patch(module, "preflight", timed("preflight", module.preflight))

    sys.meta_path.insert(0, _PatchAfterImport({
        "nas.data": lambda m: patch(m, "load_data", timed("data", m.load_data)),
        "nas.builder": lambda m: patch(m, "build_model", timed("model", m.build_model)),
        "nas.checkpoint": lambda m: patch(m, "save_atomic", outside(timed("checkpoint", m.save_atomic))),
        "nas.train": patch_train,
        "nas.tracking": patch_tracking,
    }))
    import nas.cli

    code = nas.cli.main(["run", *argv])
    SECONDS["in process"] = time.perf_counter() - T0
    print(json.dumps({"seconds": SECONDS, "code": code}))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
