"""Data sets: each yields (image tensor in [0, 1], raw condition) for its train and test splits."""
