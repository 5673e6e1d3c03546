"""One module per task, each with `run(config, workdir) -> metrics`."""
