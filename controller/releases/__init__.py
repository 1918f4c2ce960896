"""Agent releases: packages an admin adds, signed with the controller's release key, served to
hosts (one-line install over HTTPS, updates over their mTLS link) and rolled out by ``opsctl agent
update`` through run command (docs/install.md#updating-agents)."""
