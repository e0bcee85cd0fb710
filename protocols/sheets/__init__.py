"""Parsers for the real datasets' own annotation files, one small module per dataset.

Every parser takes the file as published and returns a
:class:`~mer.protocols.datasets.ParseResult`: samples in sheet order plus a validation report. They
import only pandas (and its Excel readers), so ``mer data stats`` works on a sheet with no images.
"""
