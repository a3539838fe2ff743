"""What every trainer shares: YAML configs, the command line, seeding, data sampling, the loop.

``config`` typed YAML configs; ``cli`` the command line and its error handling; ``seeding``
RNG control; ``sampling`` epoch-keyed batches that resume mid-epoch; ``images``,
``manifest`` and ``augment`` reading and transforming image sets; ``optim`` AdamW and
the learning-rate schedule; ``checkpoint`` atomic files; ``metrics`` CSV and TensorBoard
logs; ``stopping`` Ctrl-C; ``loop`` the training loop itself.
"""
