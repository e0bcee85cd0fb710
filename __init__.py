"""mer: a benchmark harness and model zoo for facial micro-expression recognition.

The repository root is the package ``mer``. Sub-packages:

- :mod:`mer.protocols`: datasets, annotation parsing, preparation, protocols, metrics, the runner.
- :mod:`mer.zoo`: model registry, the estimator API, the shared training loop, weights.
- :mod:`mer.merclip`: MER-CLIP (UniformerV2 encoder, AU prompts, heads, losses, augmentation).
- :mod:`mer.baselines`: chance, majority, LBP-TOP + SVM and other reference models.
- :mod:`mer.leaderboard`: results store to markdown tables.
"""

__version__ = "0.1.0"
