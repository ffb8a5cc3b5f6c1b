import sys

from cnnarch.cli import main

sys.exit(main())
