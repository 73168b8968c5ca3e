"""python -m worker: the scheduler alone."""

import sys

from syncjobs.cli import main

if __name__ == "__main__":
    sys.exit(main(["worker", *sys.argv[1:]]))
