"""`python -m idp_dev`."""

import sys

from idp_dev.cli import main

sys.exit(main())
