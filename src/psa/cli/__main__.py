"""``python -m psa.cli``: the same as the ``psa`` console script."""

from psa.cli import main

main()
