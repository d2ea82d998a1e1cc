"""``python -m labhub.cli``: the ``labhub`` command."""

from labhub.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
