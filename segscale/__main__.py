import sys

from .cli import RUN_AS, main

sys.exit(main(prog=RUN_AS))
