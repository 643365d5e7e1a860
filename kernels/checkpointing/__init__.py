"""A training run that can stop and resume bit for bit (task deployment.checkpointing)."""
