"""The original mlbench's bodies read as ours: each official image, backends, custom images
and what is refused with what to do instead."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mlbench_core.api import original
from mlbench_core.api.schemas import RunCreate
from mlbench_core.benchmarks import REGISTRY
from mlbench_core.run_fields import validation_context

# The original client's MLBENCH_IMAGES (mlbench_core/api.py of 3.0.0), name -> image.
ORIGINAL_IMAGES = {
    "PyTorch Cifar-10 ResNet-20": "mlbench/pytorch-cifar10-resnet20-all-reduce:latest",
    "PyTorch Cifar-10 ResNet-20 (DDP)": "mlbench/pytorch-cifar10-resnet20-ddp:latest",
    "PyTorch Linear Logistic Regression": (
        "mlbench/pytorch-epsilon-logistic-regression-all-reduce:latest"
    ),
    "PyTorch Language Modeling (AWD-LSTM)": "mlbench/pytorch-wikitext2-lstm-all-reduce:latest",
    "PyTorch Machine Translation GNMT": "mlbench/pytorch-wmt16-gnmt-all-reduce:latest",
    "PyTorch Machine Translation Transformer": (
        "mlbench/pytorch-wmt17-transformer-all-reduce:latest"
    ),
    "Tensorflow Cifar-10 ResNet-20 Open-MPI": "mlbench/tensorflow-cifar10-resnet:latest",
    "PyTorch Distributed Backend benchmarking": "mlbench/pytorch-backend-benchmark:latest",
}
EXPECTED = {  # what each becomes here
    "mlbench/pytorch-cifar10-resnet20-all-reduce:latest": ("1a", "allreduce"),
    "mlbench/pytorch-cifar10-resnet20-ddp:latest": ("1a", "ddp"),
    "mlbench/pytorch-epsilon-logistic-regression-all-reduce:latest": ("2a", "allreduce"),
    "mlbench/pytorch-wikitext2-lstm-all-reduce:latest": ("3a", "allreduce"),
    "mlbench/pytorch-wmt16-gnmt-all-reduce:latest": ("4a", "allreduce"),
    "mlbench/pytorch-wmt17-transformer-all-reduce:latest": ("4b", "allreduce"),
    "mlbench/pytorch-backend-benchmark:latest": ("0a", None),
}


def form(**fields: str) -> dict[str, str]:
    """A body as the original client's create_run posts it (form fields, text)."""
    base = {"name": "orig", "num_workers": "2", "num_cpus": "2.0", "max_bandwidth": "1000",
            "gpu_enabled": "false", "light_target": "false", "run_all_nodes": "false"}  # fmt: skip
    return {**base, **fields}


def validate(body: dict) -> RunCreate:
    return RunCreate.model_validate(
        original.run_body(body, REGISTRY.keys()), context=validation_context()
    )


def messages(body: dict) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        validate(body)
    return {".".join(map(str, e["loc"])): e["msg"] for e in caught.value.errors()}


@pytest.mark.parametrize("image", sorted(EXPECTED))
def test_each_official_image_is_the_benchmark_of_its_task(image):
    benchmark, aggregation = EXPECTED[image]
    body = form(image_name=image, backend="GLOO")
    if benchmark not in REGISTRY:
        assert (
            f"is benchmark {benchmark}, which this mlbench does not have yet"
            in (messages(body)["image_name"])
        )
        return
    run = validate(body)
    assert (run.benchmark, run.image_name, run.backend) == (benchmark, None, "gloo")
    assert run.aggregation == aggregation
    assert run.custom_image_command is None and not run.original_command


def test_the_table_covers_every_original_image():
    assert set(ORIGINAL_IMAGES.values()) - set(EXPECTED) == {
        "mlbench/tensorflow-cifar10-resnet:latest"
    }
    assert {original.image_of(i) for i in EXPECTED} == set(original.IMAGES)


def test_tensorflow_and_mpi_are_refused_with_what_to_do_instead():
    tf = messages(form(image_name=ORIGINAL_IMAGES["Tensorflow Cifar-10 ResNet-20 Open-MPI"]))
    assert "TensorFlow images are not supported" in tf["image_name"]
    assert "benchmark 1a" in tf["image_name"]
    mpi = messages(form(image_name=next(iter(EXPECTED)), backend="MPI"))
    assert "MPI is not available" in mpi["backend"] and "GLOO" in mpi["backend"]
    assert "NCCL" in mpi["backend"]
    custom_mpi = messages(form(image_name="custom_image", custom_image_name="me/x",
                               custom_image_command="run", backend="custom_backend",
                               custom_backend="mpi", run_all_nodes="true"))  # fmt: skip
    assert "MPI is not available" in custom_mpi["custom_backend"]


@pytest.mark.parametrize("spelling", ["GLOO", "gloo", "Gloo"])
def test_backends_are_case_insensitive(spelling):
    run = validate(form(image_name="mlbench/pytorch-backend-benchmark:latest", backend=spelling))
    assert run.backend == "gloo"
    ours = RunCreate.model_validate(
        original.run_body({"name": "a", "num_workers": 1, "backend": spelling}),
        context=validation_context(),
    )
    assert ours.backend == "gloo"


def test_a_custom_image_keeps_its_template():
    command = "/conda/bin/python /codes/main.py --run_id {run_id} --rank {rank} --hosts {hosts}"
    run = validate(form(image_name="custom_image", custom_image_name="me/bench:2",
                        custom_image_command=command, backend="custom_backend",
                        custom_backend="gloo", run_all_nodes="true"))  # fmt: skip
    assert (run.image_name, run.custom_image_command, run.original_command) == (
        "me/bench:2",
        command,
        True,
    )
    assert run.backend == "gloo" and run.benchmark is None


def test_what_a_custom_image_cannot_have():
    missing = messages(form(image_name="custom_image", custom_image_command="run"))
    assert "required with image_name=custom_image" in missing["custom_image_name"]
    one_rank = messages(form(image_name="custom_image", custom_image_name="me/x",
                             custom_image_command="run", backend="custom_backend",
                             custom_backend="gloo", run_all_nodes="false"))  # fmt: skip
    assert "every rank runs the command" in one_rank["run_all_nodes"]
    horovod = messages(form(image_name=next(iter(EXPECTED)), use_horovod="true"))
    assert "Horovod" in horovod["use_horovod"]
    stray = messages(form(image_name=next(iter(EXPECTED)), custom_backend="gloo"))
    assert "goes with backend=custom_backend" in stray["custom_backend"]
    unknown_backend = messages(form(image_name=next(iter(EXPECTED)), backend="custom_backend",
                                    custom_backend="tcp", run_all_nodes="true"))  # fmt: skip
    assert "gloo" in unknown_backend["backend"]


def test_unknown_fields_are_still_refused():
    assert "Extra inputs are not permitted" in messages(form(gpus="2"))["gpus"]


def test_run_all_nodes_without_a_custom_backend_is_read_as_the_original_did():
    # the original ran every rank unless the backend was MPI: run_all_nodes was ignored
    run = validate(form(image_name=next(iter(EXPECTED)), backend="GLOO", run_all_nodes="false"))
    assert run.benchmark == "1a"


def test_fill_command_as_the_original_master_did():
    argv = original.fill_command(
        "/conda/bin/python /codes/main.py --run_id {run_id} --rank {rank} --hosts {hosts} "
        "--backend {backend} --keep {other} $HOME",
        run_id=7, rank=1, hosts=["a-w0.svc", "a-w1.svc"], backend="gloo",
    )  # fmt: skip
    assert argv == [
        "/conda/bin/python", "/codes/main.py", "--run_id", "7", "--rank", "1", "--hosts",
        "a-w0.svc,a-w1.svc", "--backend", "gloo", "--keep", "{other}", "$HOME",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("80% Top 1 Validation Accuracy reached in 1234.567 seconds",
         {"metric": "val_top1", "target": 80.0, "time_to_target_s": 1234.567}),
        ("Validation Perplexity of 70 reached in 9.000 seconds",
         {"metric": "val_perplexity", "target": 70.0, "time_to_target_s": 9.0}),
        ("Validation BLEU-Score of 24 reached in 1.500 seconds",
         {"metric": "val_bleu", "target": 24.0, "time_to_target_s": 1.5}),
    ],
)  # fmt: skip
def test_results_of_the_original_goals_are_parsed(text, fields):
    result = original.parse_result(text)
    assert result == {"text": text, "source": "original mlbench worker", "reached": True,
                      **fields}  # fmt: skip


def test_the_times_the_original_goals_append_are_the_split():
    text = ("80% Top 1 Validation Accuracy reached in 100.000 seconds, Compute: 60.5 seconds, "
            "Communication: 30.25 seconds, Pre-processing: 2e-05 seconds")  # fmt: skip
    assert original.parse_result(text)["split"] == {
        "compute_s": 60.5,
        "communication_s": 30.25,
        "data_loading_s": 2e-05,
    }


def test_a_result_of_another_shape_is_kept_as_text():
    assert original.parse_result("done, somehow") == {
        "text": "done, somehow",
        "source": "original mlbench worker",
    }
