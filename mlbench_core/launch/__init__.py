"""Starting a run's workers: the worker spec both backends share, local processes, pods."""
