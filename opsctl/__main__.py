import sys

from fleetops.opsctl.cli import main

sys.exit(main())
