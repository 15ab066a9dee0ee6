"""One module per command of ``python -m segscale``: ``add_arguments(parser)`` and ``run(args) -> int``."""
