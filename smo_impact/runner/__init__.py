"""The runner: plan (config -> runs), run (one run's stages), experiment (the whole sweep)."""
