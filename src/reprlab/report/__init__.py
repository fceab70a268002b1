"""The HTML/markdown report, built from the studies' results.json files only."""
