"""letterkit: letter-writing campaigns in defence of prisoners' rights."""

__version__ = "0.1.0"
