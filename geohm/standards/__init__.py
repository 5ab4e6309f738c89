"""Soil standards, background values and Hakanson factors as package data (CSV, mg/kg).

The files here are read by :mod:`geohm.risk` through :mod:`importlib.resources`; see
``README.md`` in this folder for what each file holds and how to override it.
"""
