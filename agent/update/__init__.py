"""Agent self-update (``opsctl agent update``; docs/install.md#updating-agents).

``task.py`` is the agent task ``agent.update``: download the release over the host's mTLS link,
verify the controller's signature, install it with the host's package manager keeping the
previous package, restart the agent, and roll back when the new version does not reconnect in
time. ``trial.py`` holds the marker the agent writes when it starts and connects, and the
decision made from it; ``download.py`` and ``debian.py`` the I/O.
"""
