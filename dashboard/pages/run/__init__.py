"""The parts of the run page (``/runs/<id>``), one module each: its status and story, the
training charts, the workers' resources, the logs, and the actions."""
