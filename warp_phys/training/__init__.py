"""Training, losses, data checks and checkpoints."""
