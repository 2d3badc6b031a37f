"""Local online endpoints and deployments, managed as Azure ML manages its own.

==================  ==========================================================
module              holds
==================  ==========================================================
``specs``           ``endpoint.yml`` / ``deployment.yml`` read with the SDK's loaders
``state``           the records in ``<workspace>/endpoints/<name>/``
``processes``       start, probe and stop the background processes
``router``          the endpoint's reverse proxy: traffic, mirror, pinning
``upstream``        the router's kept connections to the instances
``instance``        one server process of a deployment
``endpoints``       ``online-endpoint create/update/show/list/delete/get-logs``
``deployments``     ``online-deployment create/update/show/list/delete/get-logs``
``run``             the processes' entry (``python -m titanicml.deploy.local.run``)
==================  ==========================================================
"""

from __future__ import annotations

__all__: list[str] = []
