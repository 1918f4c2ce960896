"""OperatorService: what opsctl calls, one module per room over a shared base (``base.py``).

``servicer.OperatorServicer`` is the one servicer the composition root registers.
"""

from fleetops.controller.rpc.operator.servicer import OperatorServicer

__all__ = ["OperatorServicer"]
