"""The model's core, torch only: the condition a conditioner gives, the data contract, the
CVAE and its objective, the prior's interface, and sampling. It knows no recipe."""
