"""Names of the series a training run posts to mark where it is (read by
:mod:`mlbench_core.progress`): ``epoch`` (value k at the end of epoch k) and
``validation_started`` (value k when epoch k's validation begins). No imports: the CLI
and the API read these without loading the engine."""

EPOCH = "epoch"
VALIDATING = "validation_started"
