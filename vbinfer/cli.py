"""The ``vbinfer`` command.

- ``vbinfer demo [eeg|mvar|field|sweep|network]`` runs a workflow on built-in defaults, prints
  its table of diagnostics and writes plots and results to an output folder it names;
  ``vbinfer demo`` alone runs :data:`DEFAULT_WORKFLOW`.
- ``vbinfer bench [NAME ...]`` runs the benchmarks of a source checkout and prints their tables.
- ``vbinfer sweep CONFIG`` and ``vbinfer sbc CONFIG`` run a TOML job in-process or on a Dask
  cluster (``--scheduler ADDRESS``, ``--local-workers N``), resumable (:mod:`vbinfer.cluster`).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["WORKFLOWS", "build_parser", "main"]

#: Workflow name -> (module, one-line description).
WORKFLOWS: dict[str, tuple[str, str]] = {
    "eeg": (
        "vbinfer.workflows.eeg",
        "Jansen-Rit network with delays -> EEG lead field -> log spectra; NUTS and SVI",
    ),
    "mvar": ("vbinfer.workflows.mvar", "recover an 8x8 MVAR interaction matrix: MAP and NUTS"),
    "field": (
        "vbinfer.workflows.field",
        "initial condition of a diffusive spherical field (2048 unknowns) by NUTS",
    ),
    "sweep": ("vbinfer.workflows.sweep", "batched MPR sweep over coupling, noise, excitability"),
    "network": ("vbinfer.workflows.network", "simulate a delayed MPR network (no inference)"),
}

#: What ``vbinfer demo`` runs without a name.
DEFAULT_WORKFLOW = "eeg"

#: Benchmark name -> script under ``benchmarks/`` of a source checkout.
BENCHMARKS: dict[str, str] = {
    "network": "network_throughput.py",
    "sht": "sht_throughput.py",
    "inference": "inference_backends.py",
    "long_run": "long_run_bold.py",
    "field_mcmc": "field_mcmc.py",
    "cluster": "cluster_sweep.py",
}


def _demo(args: argparse.Namespace) -> int:
    name = args.workflow
    module = importlib.import_module(WORKFLOWS[name][0])
    out = Path(args.out if args.out is not None else f"vbinfer-demo/{name}").resolve()
    options = {
        "seed": args.seed,
        "quick": args.quick,
        "progress": not args.no_progress,
        "num_samples": args.num_samples,
        "backend": args.backend,
    }
    accepted = inspect.signature(module.run).parameters
    for opt in ("num_samples", "backend"):
        if options[opt] is None:
            del options[opt]
        elif opt not in accepted:
            print(f"vbinfer demo {name}: --{opt.replace('_', '-')} does not apply", file=sys.stderr)
            return 2
    report = module.run(out, **options)
    saved = report.save_json(out / "report.json")  # every workflow writes it; the CLI makes sure
    if saved not in report.files:
        report.files.append(saved)
    print(report.format())
    return 0 if report.passed is not False else 1


def _bench(args: argparse.Namespace) -> int:
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        print(
            f"vbinfer bench: unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}",
            file=sys.stderr,
        )
        return 2
    root = Path(__file__).resolve().parents[1] / "benchmarks"
    if not root.is_dir():
        print(
            "vbinfer bench needs a source checkout of vbinfer (the benchmarks/ folder beside "
            f"the package); looked in {root}",
            file=sys.stderr,
        )
        return 2
    names = args.names or list(BENCHMARKS)
    status = 0
    for name in names:
        script = root / BENCHMARKS[name]
        if not script.exists():
            print(f"vbinfer bench {name}: {script} not found", file=sys.stderr)
            status = 2
            continue
        cmd = [sys.executable, str(script), *(["--quick"] if args.quick else [])]
        print(f"$ {' '.join(cmd)}", flush=True)
        status = max(status, subprocess.call(cmd))
    return status


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``vbinfer`` command."""
    parser = argparse.ArgumentParser(
        prog="vbinfer", description="Bayesian inference on virtual-brain models (JAX)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    lines = "\n".join(f"  {k:<8} {v[1]}" for k, v in WORKFLOWS.items())
    demo = sub.add_parser(
        "demo",
        help=f"run a workflow on built-in defaults (default: {DEFAULT_WORKFLOW})",
        description=f"Run a workflow on built-in defaults.\n\nworkflows:\n{lines}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("workflow", nargs="?", default=DEFAULT_WORKFLOW, choices=list(WORKFLOWS))
    demo.add_argument("--out", default=None, help="output folder (default: vbinfer-demo/NAME)")
    demo.add_argument("--seed", type=int, default=0, help="PRNG seed (default: %(default)s)")
    demo.add_argument("--num-samples", type=int, default=None, help="posterior draws per chain")
    demo.add_argument(
        "--backend", default=None, help="inference backend, e.g. nuts, blackjax_nuts, svi, map"
    )
    demo.add_argument("--quick", action="store_true", help="a small, fast version of the run")
    demo.add_argument("--no-progress", action="store_true", help="no progress output")
    bench = sub.add_parser("bench", help="run the benchmarks (source checkout) and print tables")
    bench.add_argument("names", nargs="*", help=f"any of {', '.join(BENCHMARKS)} (default: all)")
    bench.add_argument("--quick", action="store_true", help="pass --quick to each benchmark")
    from vbinfer.cluster.cli import add_parsers as add_cluster_parsers

    add_cluster_parsers(sub)  # vbinfer sweep CONFIG, vbinfer sbc CONFIG
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vbinfer`` command."""
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        return _demo(args)
    if args.command == "bench":
        return _bench(args)
    if args.command in ("sweep", "sbc"):
        return args.func(args)
    return 2


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
