"""All of Neo4j: settings, driver logs, the Cypher statements (cypher/), the store backend, ingest, bulk import, write-back and saved queries.

Only the driver-free names are exported here; the rest by their module path
(``spillover.neo4j.store``, ``.ingest``, ``.bulk``, ``.writeback``, ``.saved``), which import the driver.
"""

from .driverlog import route_driver_logs
from .settings import DEFAULT_DATABASE, DEFAULT_USER, Neo4jSettings

__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_USER",
    "Neo4jSettings",
    "route_driver_logs",
]
