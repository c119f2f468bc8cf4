"""``python -m spillover``: the command line (:mod:`spillover.cli.commands`)."""

from .cli.commands import main

main()
