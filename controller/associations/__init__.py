"""Associations room: documents kept applied to targets (docs/automation.md#associations), as SSM State Manager.

An association applies a document to every host its target matches on a schedule, and at once to
a host that newly matches (a new registration, a tag change); each application runs as the
association's author, decided again when it runs. Each host's compliance (its last application's
result, and whether the document's check still passes between applications: ``drifted`` when it
does not) is kept beside patch compliance.
"""
