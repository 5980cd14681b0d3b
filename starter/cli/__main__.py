"""``python -m starter.cli``: the ``kartu`` console script."""

from starter.cli.main import main

main()
