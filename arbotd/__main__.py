"""``python -m arbotd`` and the ``arbotd`` console script."""

import sys

from arbotd._cli import main

if __name__ == "__main__":
    sys.exit(main())
