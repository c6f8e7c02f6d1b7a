"""Where and how the condition enters a network: each injection is `(h, cond) -> h'`.

h is a feature map [B, C, H, W] (conv networks) or a vector [B, D] (MLPs); every injection
takes both and reports the channels it hands on as `out_channels`. The recipe places them:
``injections: [{name: mid, at: 2, net: encoder}]``.
"""
