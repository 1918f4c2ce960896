import sys

from fleetops.agent.cli import main

sys.exit(main())
