import sys

from fer_lib.cli import main

sys.exit(main())
