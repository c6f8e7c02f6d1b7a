"""What a run leaves on disk: the checkpoint format (one owner, with its version and the
upgrade of older ones) and the run folder (`RunDir`, the one place its paths are spelled)."""
