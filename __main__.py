"""``python -m mer`` (also under ``torchrun``)."""

from mer.cli import main

main()
