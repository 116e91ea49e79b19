"""One persistence layer: one connection policy, one migrations table, transactions, off the loop.

Every store (journal, callbacks, leads, recordings, supervision audit) takes a connection from
:func:`connect`, declares its schema as numbered :class:`Migration` steps applied by :func:`migrate`,
and writes inside :func:`transaction`. The daemon runs every store call on one database thread
(:class:`DbThread`), so a locked or slow database never blocks the event loop.
"""

from callcenter.persistence.db import DbThread, Migration, Store, connect, migrate, transaction

__all__ = ["DbThread", "Migration", "Store", "connect", "migrate", "transaction"]
