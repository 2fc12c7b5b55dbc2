"""python -m mwaa_migrate_cli: the same as the mwaa-migrate command."""

import sys

from mwaa_migrate_cli.main import main

sys.exit(main())
