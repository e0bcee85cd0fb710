"""Leaderboard: run directories → the papers' tables with measured rows beside the reported ones.

Entry point: :func:`mer.leaderboard.build.build_leaderboard` (``mer leaderboard build``).
"""
