"""The kinds configuration as code knows, built from the controller's services (one line each)."""

from __future__ import annotations

from fleetops.controller.associations.service import AssociationService
from fleetops.controller.authz.store import RoleStore
from fleetops.controller.config.association import AssociationKind
from fleetops.controller.config.baseline import BaselineKind
from fleetops.controller.config.document import DocumentKind
from fleetops.controller.config.interfaces import KindHandler
from fleetops.controller.config.patch_group import PatchGroupKind
from fleetops.controller.config.role import RoleKind
from fleetops.controller.config.subscription import SubscriptionKind
from fleetops.controller.config.window import WindowKind
from fleetops.controller.documents.service import DocumentService
from fleetops.controller.events.service import EventService
from fleetops.controller.patching.service import PatchService
from fleetops.controller.windows.service import WindowService


def default_kinds(
    roles: RoleStore,
    patching: PatchService,
    documents: DocumentService,
    windows: WindowService,
    associations: AssociationService,
    events: EventService,
) -> list[KindHandler]:
    """Every kind, in no particular order (each has its rank)."""
    return [
        RoleKind(roles),
        BaselineKind(patching),
        PatchGroupKind(patching),
        DocumentKind(documents),
        WindowKind(windows, documents),
        AssociationKind(associations),
        SubscriptionKind(events),
    ]
