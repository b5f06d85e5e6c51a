"""Shared core: sources, run folders, metrics, plots, reports, configs. Knows nothing about fraud or NLI."""
