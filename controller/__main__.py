import sys

from fleetops.controller.cli import main

sys.exit(main())
