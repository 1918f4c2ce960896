"""The agent's own version, reported in its inventory and in ``Hello``."""

AGENT_VERSION = "0.1.0"
