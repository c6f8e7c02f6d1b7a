"""Trackers a run logs to besides its own folder: TensorBoard, MLflow, W&B, CSV files."""
