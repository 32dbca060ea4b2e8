"""The original mlbench's (mlbench-core 3.0.0) request bodies, read as ours.

Its client (``ApiClient.create_run``) and CLI (``mlbench run``) post forms with fields of
their own: ``run_all_nodes`` always, upper-case backends (``MPI``, ``GLOO``, ``NCCL``) or
``backend=custom_backend`` + ``custom_backend``, the official image names of their
``MLBENCH_IMAGES``, and custom images as ``image_name=custom_image`` + ``custom_image_name``
+ ``custom_image_command`` (a template with ``{run_id} {rank} {hosts} {backend}``). Its
workers post their official result as text (``TaskResult @ 0``). :func:`run_body` turns
such a body into :class:`~mlbench_core.api.schemas.RunCreate`'s fields before validation;
what cannot be given is refused with a message saying what to do instead.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

# The official images of the original's MLBENCH_IMAGES -> (benchmark, aggregation).
IMAGES: dict[str, tuple[str, str | None]] = {
    "mlbench/pytorch-cifar10-resnet20-all-reduce": ("1a", "allreduce"),
    "mlbench/pytorch-cifar10-resnet20-ddp": ("1a", "ddp"),
    "mlbench/pytorch-epsilon-logistic-regression-all-reduce": ("2a", "allreduce"),
    "mlbench/pytorch-wikitext2-lstm-all-reduce": ("3a", "allreduce"),
    "mlbench/pytorch-wmt16-gnmt-all-reduce": ("4a", "allreduce"),
    "mlbench/pytorch-wmt17-transformer-all-reduce": ("4b", "allreduce"),
    "mlbench/pytorch-backend-benchmark": ("0a", None),
}
TENSORFLOW_IMAGE = "mlbench/tensorflow-cifar10-resnet"
CUSTOM_IMAGE = "custom_image"
CUSTOM_BACKEND = "custom_backend"
# The original's own fields, read here and not stored as such.
FIELDS = ("run_all_nodes", "custom_backend", "custom_image_name", "use_horovod")
# The original's placeholders of a custom image's command, filled per rank.
PLACEHOLDERS = ("run_id", "rank", "hosts", "backend")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")

# A text result as the original's goals worded it (mlbench_core.evaluation.goals), e.g.
# "80% Top 1 Validation Accuracy reached in 1234.567 seconds".
TEXT_RESULT_NAME = re.compile(r"^TaskResult @ (?P<rank>[0-9]{1,10})$")
_RESULT_SHAPES = (
    (re.compile(r"^(?P<target>\d+)% Top 1 Validation Accuracy reached in (?P<s>[\d.]+) seconds"),
     "val_top1"),
    (re.compile(r"^Validation Perplexity of (?P<target>[\d.]+) reached in (?P<s>[\d.]+) seconds"),
     "val_perplexity"),
    (re.compile(r"^Validation BLEU-Score of (?P<target>[\d.]+) reached in (?P<s>[\d.]+) seconds"),
     "val_bleu"),
)  # fmt: skip


def _error(field: str, message: str, value: Any) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError("original_mlbench", message), loc=(field,), input=value
    )


def _flag(value: Any) -> bool:
    """A boolean as the original sent it: "true"/"false" text (forms), or a JSON boolean."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes", "on")


def image_of(image_name: str) -> str:
    """An image reference without its tag (``mlbench/x:latest`` -> ``mlbench/x``)."""
    last = image_name.rsplit("/", 1)[-1]
    return image_name[: len(image_name) - len(last)] + last.split(":", 1)[0]


def run_body(data: Any, benchmarks: Any = None) -> Any:
    """``data`` (a new run's body) with the original mlbench's fields and values read as
    ours; :class:`~pydantic.ValidationError` naming the field for what mlbench cannot run.
    ``benchmarks``: the registry's ids (an official image of a benchmark not among them is
    refused). Bodies of ours pass unchanged, but for the backend's case."""
    if not isinstance(data, dict):
        return data
    out = {k: v for k, v in data.items() if k not in FIELDS}
    errors: list[InitErrorDetails] = []
    custom_backend = _backend(data, out, errors)
    _image(data, out, errors, benchmarks)
    if "run_all_nodes" in data and not _flag(data["run_all_nodes"]) and custom_backend:
        errors.append(
            _error(
                "run_all_nodes",
                "run_all_nodes=false (rank 0 starting the others, as mpirun did) is not "
                "supported: every rank runs the command; send run_all_nodes=true",
                data["run_all_nodes"],
            )
        )
    if _flag(data.get("use_horovod", False)):
        errors.append(
            _error(
                "use_horovod",
                "Horovod is not installed in mlbench's workers: use_horovod must be false",
                data["use_horovod"],
            )
        )
    if errors:
        raise ValidationError.from_exception_data("RunCreate", errors)
    return out


def _backend(data: dict[str, Any], out: dict[str, Any], errors: list[InitErrorDetails]) -> bool:
    """Read the backend case-insensitively, ``custom_backend`` as the backend it names; MPI
    refused. Whether a custom backend was given."""
    backend = data.get("backend")
    custom = isinstance(backend, str) and backend.strip().lower() == CUSTOM_BACKEND
    if custom:
        backend = data.get("custom_backend")
        if not backend:
            errors.append(_error("custom_backend", "required with backend=custom_backend", None))
            return True
    elif data.get("custom_backend") not in (None, ""):
        errors.append(
            _error(
                "custom_backend",
                "goes with backend=custom_backend (or send the backend itself as backend)",
                data["custom_backend"],
            )
        )
    if isinstance(backend, str):
        backend = backend.strip().lower()
        if backend == "mpi":
            errors.append(
                _error(
                    "custom_backend" if custom else "backend",
                    "MPI is not available: the workers' CPU build of PyTorch has no MPI "
                    "backend; use GLOO (or NCCL, with gpu_enabled)",
                    data.get("custom_backend" if custom else "backend"),
                )
            )
        out["backend"] = backend
    return custom


def _image(
    data: dict[str, Any], out: dict[str, Any], errors: list[InitErrorDetails], benchmarks: Any
) -> None:
    """An official image as the benchmark of the same task; ``custom_image`` as a custom
    image whose command is the original's template."""
    image_name = data.get("image_name")
    if image_name == CUSTOM_IMAGE:
        out["image_name"] = data.get("custom_image_name")
        if not out["image_name"]:
            message = "required with image_name=custom_image"
            errors.append(_error("custom_image_name", message, None))
        out["original_command"] = True
        return
    if data.get("custom_image_name") not in (None, ""):
        errors.append(
            _error(
                "custom_image_name",
                "goes with image_name=custom_image (or send the image itself as image_name)",
                data["custom_image_name"],
            )
        )
    if not isinstance(image_name, str):
        return
    bare = image_of(image_name.strip())
    if bare == TENSORFLOW_IMAGE:
        errors.append(
            _error(
                "image_name",
                "TensorFlow images are not supported: mlbench's workers run PyTorch; ResNet-20 "
                "on CIFAR-10 is benchmark 1a (mlbench/pytorch-cifar10-resnet20-all-reduce)",
                image_name,
            )
        )
        return
    if bare not in IMAGES:
        return  # an image of the user's own
    benchmark, aggregation = IMAGES[bare]
    if benchmarks is not None and benchmark not in benchmarks:
        errors.append(
            _error(
                "image_name",
                f"{image_name} is benchmark {benchmark}, which this mlbench does not have yet; "
                f"valid benchmarks: {', '.join(sorted(benchmarks))}",
                image_name,
            )
        )
        return
    if data.get("benchmark") not in (None, "", benchmark):
        errors.append(
            _error("image_name", f"is benchmark {benchmark}, not {data['benchmark']}", image_name)
        )
        return
    del out["image_name"]
    out.pop("custom_image_command", None)  # the official images' command is the worker's
    out["benchmark"] = benchmark
    if aggregation is not None and out.get("aggregation") in (None, ""):
        out["aggregation"] = aggregation


def fill_command(
    command: str, *, run_id: int, rank: int, hosts: list[str], backend: str
) -> list[str]:
    """The argv of an original custom image's command for ``rank``: its placeholders filled,
    split on spaces and run without a shell, as the original's master ran it."""
    values = {"run_id": str(run_id), "rank": str(rank), "hosts": ",".join(hosts),
              "backend": backend}  # fmt: skip
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], command).split(" ")


# The times the original goals append (", Compute: 12.5 seconds, ...") -> our split's keys.
_SPLIT = {"Compute": "compute_s", "Communication": "communication_s",
          "Metrics Computation": "metrics_s", "Pre-processing": "data_loading_s"}  # fmt: skip
_SPLIT_PART = re.compile(r", (" + "|".join(map(re.escape, _SPLIT)) + r"): ([\d.eE+-]+) seconds")


def parse_result(text: str) -> dict[str, Any]:
    """An original worker's result sentence as a result: ``text``, and where it has one of
    the original goals' shapes, ``reached``, ``metric``, ``target``, ``time_to_target_s``
    and the ``split`` of the times it names."""
    result: dict[str, Any] = {"text": text, "source": "original mlbench worker"}
    for pattern, metric in _RESULT_SHAPES:
        if found := pattern.match(text.strip()):
            result.update(
                reached=True,
                metric=metric,
                target=float(found["target"]),
                time_to_target_s=float(found["s"]),
            )
            split = {}
            for name, seconds in _SPLIT_PART.findall(text):
                try:
                    split[_SPLIT[name]] = float(seconds)
                except ValueError:
                    continue
            if split:
                result["split"] = split
            break
    return result
