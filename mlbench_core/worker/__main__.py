"""``python -m mlbench_core.worker --run-id N --benchmark NAME [--light] [options]``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mlbench_core.worker import WorkerError


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mlbench_core.worker", description="Run one rank of an mlbench run."
    )
    parser.add_argument("--run-id", type=int, required=True, help="the run's id in the API")
    parser.add_argument("--benchmark", required=True, help="a benchmark id of the registry")
    parser.add_argument("--light", action="store_true", help="aim at the light goal")
    parser.add_argument("--epochs", type=int, default=None, help="at most this many epochs")
    parser.add_argument(
        "--seed", type=int, default=None, help="shared by all ranks (default: the benchmark's)"
    )
    parser.add_argument("--backend", choices=("gloo", "nccl"), default=None, help="default gloo")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds to wait for other ranks (300)"
    )
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="random data of the real shapes: measures throughput only (marked in the result)",
    )
    parser.add_argument(
        "--aggregation", default=None, help="allreduce | ddp | gossip (default: the benchmark's)"
    )
    parser.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=None,
        help="save every epoch there, and resume from the newest epoch all ranks saved",
    )
    parser.add_argument(
        "--deterministic", action="store_true", help="deterministic algorithms (slower)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one of the benchmark's settings (recorded with the result); repeatable",
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="at most this many training steps per epoch"
    )
    args = parser.parse_args(argv)
    pairs = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            parser.error(f"--set needs KEY=VALUE, got {item!r}")
        pairs[key.strip()] = value.strip()
    args.overrides = pairs
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Imported after parsing, so that --help does not wait for torch.
    from mlbench_core.engine.distributed import DEFAULT_TIMEOUT
    from mlbench_core.worker import main as worker

    try:
        return worker.run(
            worker.Options(
                run_id=args.run_id,
                benchmark=args.benchmark,
                light=args.light,
                epochs=args.epochs,
                seed=args.seed,
                backend=args.backend,
                timeout=args.timeout if args.timeout is not None else DEFAULT_TIMEOUT,
                synthetic=args.synthetic,
                aggregation=args.aggregation,
                checkpoint_dir=args.checkpoint_dir,
                deterministic=args.deterministic,
                overrides=args.overrides,
                steps_per_epoch=args.steps,
            )
        )
    except WorkerError as exc:
        print(f"mlbench worker: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mlbench worker: interrupted", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
