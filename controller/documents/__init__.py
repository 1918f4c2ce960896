"""Documents room: named, versioned, parameterised operations (docs/automation.md#documents).

The document format and its parameters are ``fleetops.common.documents``; this room keeps the
versions (``store``), the built-in read-only documents beside them, and turns a run of a document
into a command (``service.DocumentService.command_spec``): scripts per platform, parameters as
``FLEETOPS_PARAM_*`` variables, never as script text.

``models``   ``DocumentInfo``: one version as listed and shown
``store``    ``DocumentStore``: the ``documents`` and ``document_versions`` tables
``service``  ``DocumentService``: create, update, default version, delete; resolve a reference for a run
"""
