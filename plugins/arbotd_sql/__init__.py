"""arbotd_sql: storage on SQLite (the default, a file in the state directory) or
PostgreSQL, through peewee.

Signals, trades with their orders and fills, 1-minute price bars, equity and balance
snapshots, paper funding, the API's users and the audit trail. The event loop never waits
for the database: records are queued for one writer thread that writes them in batches, and
reads run in worker threads.
"""

from arbotd_sql.config import StorageConfig
from arbotd_sql.database import StorageError
from arbotd_sql.storage import SqlStorage
from arbotd_sql.writer import RetryPolicy

__all__ = ["RetryPolicy", "SqlStorage", "StorageConfig", "StorageError"]
