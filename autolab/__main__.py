import sys

from autolab.cli import main

sys.exit(main())
