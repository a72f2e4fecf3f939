"""Start-up costs, each in fresh Python processes: medians over a few runs.

* ``import tapegrad`` (the time of the import statement inside the process);
* the first backward after the import, with a warm Numba cache (``NUMBA_CACHE_DIR`` a
  folder that an earlier process filled) and with a cold one (a new empty folder): a small
  float32 graph (mm, add, clamp, pow, sum: the walkthrough's ops), then the same in float64,
  then a Python-float scalar graph, each timed from the end of the previous step;
* next to ``import torch``, ``import numba`` and ``import numpy``, and the bare interpreter.

Children run with this checkout first on ``PYTHONPATH`` and with bytecode caching on (after
one priming import), as an installed package would be. ``--quick`` skips the cold-cache
runs (each compiles every kernel) and runs everything once.
"""
import _common as C  # first: pins BLAS threads, puts this checkout on sys.path

import json
import os
import shutil
import subprocess
import sys
import tempfile

CHILD_TG = r"""
import json, sys, time
t0 = time.process_time()
import tapegrad as tg
t1 = time.process_time()
out = {"import": t1 - t0}
if sys.argv[1] == "backward":
    for name, dt in (("float32", tg.float32), ("float64", tg.float64)):
        s = time.process_time()
        x = tg.ones(4, 3, dtype=dt)
        w = tg.ones(3, 2, dtype=dt, requires_grad=True)
        b = tg.zeros(1, 2, dtype=dt, requires_grad=True)
        loss = (x.mm(w).add(b).clamp(min=0) - 1).pow(2).sum()
        loss.backward()
        assert w.grad is not None
        out[name] = time.process_time() - s
    s = time.process_time()
    a = tg.tensor(1.5, dtype=tg.float64, requires_grad=True)
    ((a * a + a) * 0.5).relu().backward()
    assert a.grad is not None
    out["scalar"] = time.process_time() - s
print(json.dumps(out))
"""

CHILD_IMPORT = r"""
import json, sys, time
t0 = time.process_time()
__import__(sys.argv[1])
print(json.dumps({"import": time.process_time() - t0}))
"""


def child_env(cache_dir):
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = C.ROOT + os.pathsep + env.get("PYTHONPATH", "")
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    return env


def run_child(code, args, cache_dir=None, timeout=600):
    """(parsed JSON the child printed, wall seconds of the whole process)."""
    t0 = C.time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code, *args], env=child_env(cache_dir),
                       capture_output=True, text=True, timeout=timeout, cwd=C.BENCH)
    wall = C.time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"child failed ({p.returncode}): {p.stderr.strip()[-600:]}")
    return json.loads(p.stdout.strip().splitlines()[-1]), wall


def medians(runs):
    keys = runs[0][0].keys()
    med = {k: C.median([r[0][k] for r in runs]) for k in keys}
    med["wall"] = C.median([r[1] for r in runs])
    return med


def main():
    args = C.parse_args(__doc__, repeats=5)
    reps = 1 if args.quick else args.repeats
    cold_reps = 0 if args.quick else max(1, min(3, args.repeats))
    notes, failures = [], []
    tmp = tempfile.mkdtemp(prefix="tapegrad_startup_")
    table = C.Table("Fresh processes: seconds", ["import", "first backward float32",
                                                  "then float64", "then scalar graph",
                                                  "import + first backward",
                                                  "process wall"])
    results = {}
    try:
        # a priming import (bytecode), then the interpreter alone
        run_child(CHILD_IMPORT, ["tapegrad"])
        if not args.quick:
            base = medians([run_child("print('{\"import\": 0}')", [])
                            for _ in range(reps)])
            table.add("python -c pass", "-", "-", "-", "-", "-", base["wall"])

        imp = medians([run_child(CHILD_TG, ["import"], os.path.join(tmp, "unused"))
                       for _ in range(reps)])
        results["import"] = imp["import"]
        table.add("import tapegrad", imp["import"], "-", "-", "-", "-", imp["wall"])

        if args.quick:
            warm_dir = os.environ.get("NUMBA_CACHE_DIR") or os.path.join(
                tempfile.gettempdir(), "tapegrad_bench_numba_cache")
        else:
            warm_dir = os.path.join(tmp, "warm")
        run_child(CHILD_TG, ["backward"], warm_dir)                 # fills the cache
        warm = medians([run_child(CHILD_TG, ["backward"], warm_dir) for _ in range(reps)])
        results["warm"] = warm
        table.add("tapegrad, warm Numba cache", warm["import"], warm["float32"],
                  warm["float64"], warm["scalar"], warm["import"] + warm["float32"],
                  warm["wall"])

        if cold_reps:
            cold_runs = []
            for i in range(cold_reps):
                d = os.path.join(tmp, f"cold{i}")
                cold_runs.append(run_child(CHILD_TG, ["backward"], d))
                shutil.rmtree(d, ignore_errors=True)
            cold = medians(cold_runs)
            results["cold"] = cold
            table.add("tapegrad, cold Numba cache", cold["import"], cold["float32"],
                      cold["float64"], cold["scalar"], cold["import"] + cold["float32"],
                      cold["wall"])
        else:
            notes.append("--quick: the cold-cache runs are skipped.")

        for mod in ("torch",) if args.quick else ("numpy", "numba", "torch"):
            try:
                if not args.quick:
                    run_child(CHILD_IMPORT, [mod])          # bytecode and disk caches
                m = medians([run_child(CHILD_IMPORT, [mod]) for _ in range(reps)])
                table.add(f"import {mod}", m["import"], "-", "-", "-", "-", m["wall"])
            except Exception as e:
                notes.append(f"import {mod}: skipped ({str(e)[-200:]})")
    except Exception as e:
        failures.append(str(e))
        notes.append(f"FAILED: {e}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    goals = []
    if "import" in results:
        goals.append(C.goal_line("import tapegrad", f"{results['import']:.2f} s", "<= 0.35 s",
                                 results["import"] <= 0.35))
    if "warm" in results:
        w = results["warm"]["float32"]
        goals.append(C.goal_line("first backward, warm cache, after the import (issue 10)",
                                 f"{w:.2f} s", "<= 0.4 s", w <= 0.4))
    if "cold" in results:
        c = results["cold"]
        worst = max(c["float32"], c["float64"])
        goals.append(C.goal_line("first backward, cold cache, per dtype (issue 10)",
                                 f"float32 {c['float32']:.1f} s, then float64 "
                                 f"{c['float64']:.3f} s", "<= 6 s", worst <= 6))
    notes.append("All columns but 'process wall' are CPU time of the child "
                 "(time.process_time), as the machine is shared; 'process wall' is the wall "
                 "time of the whole child process, interpreter start-up included.")
    notes.append("'first backward float32' is timed from the end of the import; 'then "
                 "float64' and 'then scalar graph' from the end of the step before (a "
                 "second dtype or a scalar graph may need kernels of its own).")
    notes.append(f"Medians of {reps} warm runs" + (f" and {cold_reps} cold runs" if cold_reps
                                                   else "") + ".")
    C.emit("startup", "Start-up: import and first backward in fresh processes",
           [table, C.goal_block(goals)], notes, args)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
