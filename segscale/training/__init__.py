"""Training: the run configuration, per-step data, and the resumable (optionally DDP) loop."""
