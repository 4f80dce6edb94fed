"""Scoring trained models: metrics and comparison against the control arm."""
