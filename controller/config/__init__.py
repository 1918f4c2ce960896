"""Configuration as code: apply, diff and export sets of objects (docs/apply.md).

``interfaces.py`` (objects, changes, the :class:`KindHandler` each kind implements),
``service.py`` (plan, authorize, apply, export), ``store.py`` (provenance: which source applied what),
``registry.py`` (the kinds), and one module per kind: ``role.py``, ``baseline.py``,
``patch_group.py``, ``document.py``, ``window.py``, ``association.py``.
"""

from fleetops.controller.config.interfaces import Change, ConfigObject, FieldChange, KindHandler
from fleetops.controller.config.service import ConfigService
from fleetops.controller.config.store import AppliedObjects

__all__ = ["AppliedObjects", "Change", "ConfigObject", "ConfigService", "FieldChange", "KindHandler"]
