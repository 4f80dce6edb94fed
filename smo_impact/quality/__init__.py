"""Annotation quality: agreement, rater performance, item difficulty, KPI targets and the audit."""
