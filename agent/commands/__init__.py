"""Run command on the agent: exactly-once execution of RunInvocations with a durable journal.

Modules, from the bottom up:

``durable``   atomic, fsync'ed file writes (the journal's only way of writing state)
``entry``     what the journal knows about one invocation (phase, outcome, totals)
``journal``   one directory per invocation id: spec, state and output spool files; replay and recovery
``platform``  how a command is spawned and its process group signalled (``posix``, ``windows``)
``reboot``    how the host is rebooted when a script asks for it (exit 194 / 3010)
``executor``  runs one invocation: spawn, timeout, cancel, outcome, reboot request
``output``    streams a spool file as OutputChunk messages from a byte offset
``messages``  the AgentMessages this package sends
``service``   ``CommandService``: the handlers the controller link calls
"""
