import sys

from adaptlab.cli import main

sys.exit(main())
