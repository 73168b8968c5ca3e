import sys

from syncjobs.cli import main

sys.exit(main())
