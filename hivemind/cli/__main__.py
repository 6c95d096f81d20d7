import sys

from hivemind.cli import main

sys.exit(main())
