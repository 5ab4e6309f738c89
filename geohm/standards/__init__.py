"""Soil standards, background values and Hakanson factors as package data (CSV, mg/kg).

The files here are read by :mod:`geohm.io.standard_tables` (through
:mod:`importlib.resources`) for :mod:`geohm.risk`; see ``README.md`` in this folder for
what each file holds and how to override it.
"""
