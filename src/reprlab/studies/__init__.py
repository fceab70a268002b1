"""Studies: one module per family, each measuring a textbook claim. See :mod:`reprlab.studies.base`."""
