"""Shared helpers of the timing scripts in ``bench/``.

Every script does ``import _common as C`` first (before NumPy is imported), which

* pins BLAS and OpenMP to one thread (``OMP_NUM_THREADS=1`` ...), so NumPy's BLAS (which
  tapegrad also calls for matrix products) and PyTorch (``torch.set_num_threads(1)``) all
  run on one core: the timings compare libraries, not thread pools;
* puts this checkout first on ``sys.path``, so the tapegrad measured is the one next to
  ``bench/`` even when another copy is installed.

Then it gives: ``args`` (``--quick``, ``--write``, ``--repeats``), ``measure`` (warm-up, then
the median over repeats), ``Table`` (a Markdown table with ratios to a reference row),
``header`` (date, machine, versions), ``peer`` (import a peer or say why it is skipped) and
``emit`` (print, and with ``--write`` replace this script's section of ``bench/RESULTS.md``).
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import importlib  # noqa: E402
import importlib.metadata  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
RESULTS = os.path.join(BENCH, "RESULTS.md")
if sys.path[:1] != [ROOT]:
    sys.path.insert(0, ROOT)

# The order of the sections in RESULTS.md (a script not listed goes at the end).
SECTIONS = ["walkthrough_mlp", "walkthrough_parts", "compiled_step", "scalar_graph", "sweep", "large",
            "startup"]


# ----- command line ------------------------------------------------------------------
def parse_args(doc, repeats=7):
    p = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="small sizes and few repeats: a smoke run of a few seconds")
    p.add_argument("--write", action="store_true",
                   help="replace this script's section of bench/RESULTS.md with the output")
    p.add_argument("--repeats", type=int, default=None,
                   help=f"timed repeats (median reported; default {repeats}, 2 with --quick)")
    a = p.parse_args()
    if a.repeats is None:
        a.repeats = 2 if a.quick else repeats
    if a.quick and a.write:
        p.error("--quick results are not written to RESULTS.md")
    return a


# ----- timing ------------------------------------------------------------------------
# The clock of every timing: the CPU time of this process (user + system, all threads),
# not the wall clock. The machines this runs on are shared and noisy (2 cores, other jobs):
# the wall clock charges a benchmark for the time it waits while others run, by 1.5-3x
# and differently from run to run; CPU time does not. Everything timed here runs on one
# thread (BLAS, PyTorch, Numba), so CPU time is the time the work takes on one core.
clock = time.process_time
CLOCK_NAME = "CPU time of the process (time.process_time)"

def measure(fn, repeats, warmup=1):
    """Runs ``fn()`` ``warmup`` times, then ``repeats`` times; returns the median seconds.

    When ``fn`` returns a dict of phase -> seconds (it timed its own phases, e.g. record
    and backward), the median of each phase is returned as a dict instead. One full
    collection runs first (so one peer's garbage is not charged to the next); after that
    the cyclic garbage collector is left alone, as in a user's loop: the garbage of one
    call is collected when the collector triggers in a later one. (``gc.freeze`` would
    make the collector scan a growing graph far more often, inflating object-heavy peers
    3x; a full collection after every call costs 0.25 s once torch is imported.)
    """
    gc.collect()
    for _ in range(warmup):
        fn()
    runs, phased = [], False
    for _ in range(max(1, repeats)):
        t0 = clock()
        out = fn()
        dt = clock() - t0
        phased = isinstance(out, dict)
        runs.append(out if phased else {"total": dt})
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    return med if phased else med["total"]


def measure_interleaved(fns, repeats, warmup=1):
    """``measure`` for several peers at once, their runs interleaved (A B C A B C ...).

    ``fns`` maps a name to a function as ``measure`` takes; returns name -> median. A
    peer that raises is left out of the result and its exception kept under
    ``errors[name]``. On a shared machine the load drifts over minutes: interleaving
    spreads the drift over all peers, so the ratios between them stay fair.
    """
    errors = {}
    live = dict(fns)
    gc.collect()
    for _ in range(warmup):
        for name, fn in list(live.items()):
            try:
                fn()
            except Exception as e:
                errors[name] = e
                del live[name]
    runs = {name: [] for name in live}
    phased = {}
    for _ in range(max(1, repeats)):
        for name, fn in list(live.items()):
            try:
                t0 = clock()
                out = fn()
                dt = clock() - t0
            except Exception as e:
                errors[name] = e
                del live[name]
                continue
            phased[name] = isinstance(out, dict)
            runs[name].append(out if phased[name] else {"total": dt})
    res = {}
    for name in live:
        med = {k: statistics.median(r[k] for r in runs[name]) for k in runs[name][0]}
        res[name] = med if phased[name] else med["total"]
    return res, errors


def median(xs):
    return statistics.median(xs)


# ----- peers -------------------------------------------------------------------------
def peer(name, notes, label=None):
    """Imports module ``name``; on failure records a skip note and returns None."""
    try:
        return importlib.import_module(name)
    except Exception as e:  # ImportError, or a broken install
        notes.append(f"{label or name}: skipped, not installed ({type(e).__name__}: {e})")
        return None


def torch_one_thread(notes):
    """``import torch`` with ``torch.set_num_threads(1)``, or None with a note."""
    torch = peer("torch", notes, "PyTorch")
    if torch is not None:
        torch.set_num_threads(1)
    return torch


def version(dist, module=None):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        m = sys.modules.get(module or dist)
        return getattr(m, "__version__", None) if m else None


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*cmd):
    try:
        return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except Exception:
        return ""


def tapegrad_revision():
    """Commit of this checkout, with ``+dirty`` when tapegrad/ has uncommitted changes."""
    rev = _git("rev-parse", "--short", "HEAD")
    if rev and _git("status", "--porcelain", "--", "tapegrad"):
        rev += "+dirty"
    return rev or "unknown"


def header():
    """Date, machine and versions, as Markdown bullet lines."""
    try:
        import tapegrad
        tg_version = tapegrad.__version__
    except Exception as e:
        tg_version = f"import failed: {e}"
    vers = []
    for dist, mod in [("numpy", None), ("numba", None), ("scipy", None), ("torch", None),
                      ("autograd", None), ("mygrad", None), ("micrograd", None),
                      ("jax", None)]:
        v = version(dist, mod)
        vers.append(f"{dist} {v}" if v else f"{dist} (not installed)")
    cores = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cores
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    try:
        load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    return [
        f"- date: {now}",
        f"- machine: {_cpu_model()}, {cores} cores ({usable} usable), "
        f"{platform.system()} {platform.machine()}; load average {load} (1/5/15 min) "
        "when the section was printed",
        f"- python {platform.python_version()}; tapegrad {tg_version} "
        f"(commit {tapegrad_revision()}); " + ", ".join(vers),
        "- one thread everywhere: OMP/OPENBLAS/MKL_NUM_THREADS=1 and "
        "`torch.set_num_threads(1)`; medians over repeats after warm-up; times are "
        f"{CLOCK_NAME}, not wall time, as the machine is shared",
    ]


# ----- tables ------------------------------------------------------------------------
def fmt(x, digits=3):
    """A number with ``digits`` significant digits, no exponent for everyday sizes."""
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if x != x:
        return "nan"
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 10 ** digits:
        return f"{x:,.0f}"
    if a < 1e-3:
        return f"{x:.2e}"
    d = max(0, digits - 1 - int(_floor_log10(a)))
    return f"{x:.{d}f}"


def _floor_log10(a):
    import math
    return math.floor(math.log10(a))


class Table:
    """A Markdown table: ``add(name, *cells)``; ``ratio_col`` gets a ratio to the reference.

    ``ratio_col`` is the index (in ``columns``) of the number compared; the ratio column
    ``x <ref>`` is that number divided by the reference row's, so > 1 means slower.
    """

    def __init__(self, title, columns, ratio_col=None, ref=None, ratio_name=None):
        self.title = title
        self.columns = list(columns)
        self.ratio_col = ratio_col
        self.ref = ref
        self.ratio_name = ratio_name or (f"x {ref}" if ref else None)
        self.rows = []
        self.notes = []

    def add(self, name, *cells):
        self.rows.append((name, list(cells)))

    def value(self, name, col=None):
        col = self.ratio_col if col is None else col
        for n, cells in self.rows:
            if n == name:
                v = cells[col]
                return v if isinstance(v, (int, float)) else None
        return None

    def ratio(self, name):
        r, v = self.value(self.ref), self.value(name)
        return v / r if (r and v is not None) else None

    def lines(self):
        cols = ["", *self.columns]
        with_ratio = self.ratio_col is not None and self.value(self.ref) is not None
        if with_ratio:
            cols.append(self.ratio_name)
        out = [f"**{self.title}**", "", "| " + " | ".join(cols) + " |",
               "|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|"]
        for name, cells in self.rows:
            row = [name, *(fmt(c) for c in cells)]
            if with_ratio:
                r = self.ratio(name)
                row.append("-" if r is None else f"{r:.2f}")
            out.append("| " + " | ".join(row) + " |")
        for n in self.notes:
            out.append("")
            out.append(n)
        return out


# ----- output ------------------------------------------------------------------------
def emit(name, title, blocks, notes, args, intro=None):
    """Prints the section, and with ``--write`` puts it into RESULTS.md.

    ``blocks``: Tables or lists of lines; ``notes``: lines listed under "Notes".
    """
    lines = [f"## {title}", "", f"`python bench/{name}.py`", ""]
    if intro:
        lines += [intro, ""]
    lines += header() + [""]
    for b in blocks:
        lines += (b.lines() if isinstance(b, Table) else list(b)) + [""]
    if notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    text = "\n".join(lines).rstrip() + "\n"
    print(text)
    if args.write:
        write_section(name, text)
        print(f"(written to {os.path.relpath(RESULTS)})")
    return text


_BEGIN = "<!-- begin {} -->"
_END = "<!-- end {} -->"

_PREAMBLE = """# tapegrad timing results

Each section below is written by one script of `bench/` run with `--write` (for example
`python bench/walkthrough_mlp.py --write`), which replaces only its own section. Install the
peers with `pip install -e ".[bench]"`; a peer that is not installed is skipped with a note.
Times are medians over repeats after warm-up, on one thread, in CPU time of the process
(`time.process_time`) rather than wall time, because the machines are shared; ratios are to
the reference row of each table (> 1 means slower than the reference). On a loaded machine
even CPU times run 2-4x slower than on a quiet one (caches and cores are shared), so read
the ratios between the rows of one table, measured side by side in one process, rather
than absolute times across sections or runs. Each section's header gives the load average
it ran under and the tapegrad commit it measured. The goals are those of issue 4.
"""


def write_section(name, text):
    old = open(RESULTS).read() if os.path.exists(RESULTS) else _PREAMBLE
    sections = {}
    for m in re.finditer(r"<!-- begin (\w+) -->\n(.*?)<!-- end \1 -->\n?", old, re.S):
        sections[m.group(1)] = m.group(2)
    head = old.split("<!-- begin ", 1)[0].rstrip() + "\n"
    sections[name] = text
    order = [s for s in SECTIONS if s in sections] + sorted(s for s in sections
                                                            if s not in SECTIONS)
    body = "".join(f"\n{_BEGIN.format(s)}\n{sections[s]}{_END.format(s)}\n" for s in order)
    with open(RESULTS, "w") as f:
        f.write(head + body)


def goal_line(what, measured, target, met, how=""):
    """One line of the goal check: ``met`` is True, False or None (not measured)."""
    mark = {True: "met", False: "NOT met", None: "not measured"}[met]
    return f"| {what} | {target} | {measured} | {mark}{(' ' + how) if how else ''} |"


def goal_block(rows):
    return ["**Goals** (each names the issue that set it)", "", "| goal | target | measured | status |",
            "|---|---|---|---|", *rows]
