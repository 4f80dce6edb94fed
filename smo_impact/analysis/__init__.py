"""Analysis across runs: quality -> outcome (impact), root-cause attribution."""
