"""Migration scripts, one per revision: <rev>_<slug>.py."""
