"""python -m api: the HTTP API alone."""

import sys

from syncjobs.cli import main

if __name__ == "__main__":
    sys.exit(main(["api", *sys.argv[1:]]))
