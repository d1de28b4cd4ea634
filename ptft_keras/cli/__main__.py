"""`python -m ptft_keras.cli ...` runs the `ptft` command."""

import sys

from ptft_keras.cli import main

sys.exit(main())
