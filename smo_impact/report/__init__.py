"""Summaries, tables and plots of an experiment's results."""
