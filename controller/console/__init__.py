"""The web console (docs/console.md): the fleet, commands and the audit log in a browser.

Served by the controller on its own HTTPS port (``--console-listen``) with the controller's
certificate. An operator gets in with a one-time link (``opsctl console``); the browser session
acts with the certificate that asked for the link, so every page is an operator call, authorized
and audited by the same code as the gRPC API (:mod:`.calls`).
"""
