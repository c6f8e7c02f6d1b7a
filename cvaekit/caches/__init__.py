"""Caches kept between commands: decoded images, encoded captions and pretrained weights
(`cvaekit prepare`, in training/, fills them ahead of training)."""
