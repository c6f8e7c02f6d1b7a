"""Networks: encoders (image, condition) -> (mu, logvar) and decoders (z, condition) -> image logits."""
