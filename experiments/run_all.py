"""Run every experiment script in order, skipping finished work, then generate the paper's numbers.

Each script is resumable (finished runs live in its SQLite databases or JSON files), so rerunning this
after a kill continues where it stopped. The order puts the results the paper leans on first: the MLP
with Adam (the tuning at base width first, then the SP/muP, tuned and no-alignment sweeps), the
original question, the coordinate checks, the GPT, the MLP with SGD and with 4x longer Adam training, then
the Adam sweeps again with 4 seeds (robustness of the 2-seed intervals; ``transfer_mlp_s4/``), then the two
benchmarks. Last, if ``experiments/paper_numbers.py`` exists, it is run on the same artifacts (``--quick``
passes on).

    python experiments/run_all.py --quick     # every script on its small grid (~10 min on 2 cores)
    python experiments/run_all.py --full      # the full runs (~2 h on 2 cores; peers, ablation, alignment, horizon:
    #                                           several hours more, see their docstrings) -> experiments/results/
    python experiments/run_all.py --full --only coord_mlp coord_gpt
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (name, script, extra arguments), in the order they run
STEPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("tune_base", "tune_base.py", ()),
    ("transfer_mlp_adam", "transfer_mlp.py", ("--parts", "adam", "tuned", "noalign")),
    ("transfer_question", "transfer_question.py", ()),
    ("coord_mlp", "coord_mlp.py", ()),
    ("coord_gpt", "coord_gpt.py", ()),
    ("transfer_gpt", "transfer_gpt.py", ()),
    ("transfer_mlp_sgd", "transfer_mlp.py", ("--parts", "sgd")),
    ("transfer_mlp_long", "transfer_mlp.py", ("--parts", "long")),
    # robustness: the Adam sweeps again with 4 seeds (2 new), in transfer_mlp_s4/
    ("transfer_mlp_adam_s4", "transfer_mlp.py", ("--seeds", "4", "--parts", "adam", "tuned", "noalign")),
    # the peers and the drift's cause (read by findings.py into the README)
    ("peers", "peers.py", ()),
    ("ablation", "ablation.py", ()),
    ("alignment", "alignment.py", ()),
    ("horizon", "horizon.py", ()),
    # the rule for a new default, and the tasks nothing was chosen on (reads ablation's summary)
    ("confirm", "confirm.py", ("--candidate", "unit_init")),
    ("transfer_muon", "transfer_muon.py", ()),
    ("muon_updates", "muon_updates.py", ()),
    # the measured role wants applied as rows (reads ablation's and transfer_muon's muP databases)
    ("role_tests", "role_tests.py", ()),
    ("transfer_depth", "transfer_depth.py", ("--tasks", "resmlp", "gpt", "wd", "long")),
    ("transfer_hf", "transfer_hf.py", ()),
    # muTransfer as a workflow (scaling tune + scaling train) against the direct SP sweeps above
    ("mutransfer", "mutransfer.py", ()),
    # benchmarks last, on a machine the sweeps no longer load (they time one process at a time)
    ("bench_parameterize", "bench_parameterize.py", ()),
    ("bench_coord", "bench_coord.py", ()),
)
BENCHMARKS = frozenset({"bench_parameterize", "bench_coord"})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--quick", action="store_true", help="small grids (out/quick/)")
    size.add_argument("--full", action="store_true", help="the full runs (experiments/results/)")
    size.add_argument("--smoke", action="store_true", help="tiny grids, seconds each (out/smoke/)")
    p.add_argument("--workers", type=int, default=2, help="worker processes per sweep (default 2)")
    p.add_argument("--only", nargs="+", choices=[s[0] for s in STEPS], help="run only these steps")
    p.add_argument("--plot-only", action="store_true", help="no training: re-plot and re-summarize")
    p.add_argument("--keep-going", action="store_true", help="run the later steps even if one fails")
    args = p.parse_args(argv)
    size_flag = ["--quick"] if args.quick else ["--smoke"] if args.smoke else []
    flags = [*size_flag, "--workers", str(args.workers)] + (["--plot-only"] if args.plot_only else [])
    failed = []
    for name, script, extra in STEPS:
        if args.only and name not in args.only:
            continue
        if name in BENCHMARKS:  # no sweep options; nothing to re-plot; too slow for a smoke run
            if args.smoke or args.plot_only:
                continue
            command = [sys.executable, str(HERE / script), *size_flag, *extra]
        else:
            command = [sys.executable, str(HERE / script), *flags, *extra]
        print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
        start = time.perf_counter()
        code = subprocess.call(command)
        print(f"=== {name}: exit {code} after {(time.perf_counter() - start) / 60:.1f} min", flush=True)
        if code:
            failed.append(name)
            if not args.keep_going:
                break
    numbers = HERE / "paper_numbers.py"
    if numbers.is_file() and not failed and not args.smoke:
        print(f"\n=== paper numbers: {numbers.name}", flush=True)
        code = subprocess.call([sys.executable, str(numbers), *(["--quick"] if args.quick else [])])
        if code:
            failed.append("paper_numbers")
    findings = HERE / "findings.py"
    if args.full and not failed and not args.only:
        print(f"\n=== findings: {findings.name}", flush=True)
        if subprocess.call([sys.executable, str(findings)]):
            failed.append("findings")
    if failed:
        print(f"\nfailed: {', '.join(failed)} (rerun to resume)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
