"""Figures (matplotlib) and the HTML/markdown report built from studies' results.json files."""
