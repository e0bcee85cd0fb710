"""``mer bench sweep``: a grid of runs or a paper table, expanded into fold jobs and run by an existing
engine (a local process pool, Ray, or Slurm through submitit).

- :mod:`mer.sweep.plan`: the grid (models × sizes × protocols × seeds × options) and paper tables;
- :mod:`mer.sweep.jobs`: one fold job, as it runs on a worker;
- :mod:`mer.sweep.backends`: the engines, behind one small interface;
- :mod:`mer.sweep.driver`: skip finished folds, dispatch, retry, record failures, finalise, leaderboard;
- :mod:`mer.sweep.cost`: projected GPU-hours from counted FLOPs;
- :mod:`mer.sweep.status`: ``mer bench status``.

A fold job writes only its own files (``folds/fold_NNN.*``, ``logs/fold_NNN.log``); ``run.json`` has one
writer, the driver. The run directory is therefore the same whichever engine trained its folds.
"""
