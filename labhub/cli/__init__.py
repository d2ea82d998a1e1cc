"""The ``labhub`` command: run, init (deployments), cert, check, build-image."""
