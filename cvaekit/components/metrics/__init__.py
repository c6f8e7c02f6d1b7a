"""Metrics: (model, data) -> named numbers, measured at each checkpoint and by `cvaekit evaluate`."""
