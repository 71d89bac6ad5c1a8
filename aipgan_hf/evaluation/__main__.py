"""``python -m aipgan_hf.evaluation``: the evaluation command; the code is :mod:`aipgan_hf.evaluation.run`."""

import sys

from aipgan_hf.evaluation.run import main

if __name__ == "__main__":
    sys.exit(main())
