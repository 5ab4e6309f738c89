"""Mass-balance accumulation of metals in topsoil (seed 003; issue 16): fluxes, projection.

Arrays only: the budget per cell and year, the projection and its closed form, the
deposition from point sources, erosion (RUSLE), leaching and crop offtake.
"""
