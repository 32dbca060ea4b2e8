"""``python -m mlbench_core.worker --run-id N --benchmark NAME [--light] [--epochs E]``."""

from __future__ import annotations

import argparse
import logging
import sys

from mlbench_core.worker import WorkerError


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mlbench_core.worker", description="Run one rank of an mlbench run."
    )
    parser.add_argument("--run-id", type=int, required=True, help="the run's id in the API")
    parser.add_argument("--benchmark", required=True, help="a benchmark id of the registry")
    parser.add_argument("--light", action="store_true", help="aim at the light goal")
    parser.add_argument("--epochs", type=int, default=None, help="at most this many epochs")
    parser.add_argument("--seed", type=int, default=0, help="shared by all ranks")
    parser.add_argument("--backend", choices=("gloo", "nccl"), default=None, help="default gloo")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds to wait for other ranks (300)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Imported after parsing, so that --help does not wait for torch.
    from mlbench_core.worker import main as worker
    from mlbench_core.worker.distributed import DEFAULT_TIMEOUT

    try:
        return worker.run(
            args.run_id,
            args.benchmark,
            args.light,
            epochs=args.epochs,
            seed=args.seed,
            backend=args.backend,
            timeout=args.timeout if args.timeout is not None else DEFAULT_TIMEOUT,
        )
    except WorkerError as exc:
        print(f"mlbench worker: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mlbench worker: interrupted", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
