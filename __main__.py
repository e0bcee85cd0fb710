"""``python -m mer`` (also under ``torchrun``)."""

from mer.cli import main

if __name__ == "__main__":  # spawned workers (--parallel-folds) re-import this module: no second CLI
    main()
