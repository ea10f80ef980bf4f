"""Engines and session factories for PostgreSQL (psycopg 3) and SQLite.

Sessions are either writers (the default) or read-only. On SQLite a writer's transaction takes
the database's one write lock as it begins; a read-only transaction never does, so reads keep
flowing (WAL snapshots) while a writer works. On PostgreSQL a read-only transaction is
``READ ONLY``. On both, a write in a read-only session fails loudly instead of taking locks.
"""

from functools import cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

READ_ONLY = "tollgate_read_only"  # execution option the SQLite ``begin`` hook reads

# SQLite connections are file handles, and what serializes SQLite is its write lock, not the
# number of connections: a small pool only turns load into 30 s "QueuePool limit" time-outs.
# Keep 20 open, allow 80 more under bursts (the API's thread pool and the worker's activities
# stay well below 100 together), and wait as long as SQLite's own busy time-out.
SQLITE_POOL = {"pool_size": 20, "max_overflow": 80, "pool_timeout": 30}


def normalize_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use psycopg 3 for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    database = make_url(url).database
    in_memory = not database or database == ":memory:"
    if not in_memory:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    pool = {} if in_memory else SQLITE_POOL  # in memory: one connection per thread
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **pool)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:  # type: ignore[no-untyped-def]
        if conn.get_execution_options().get(READ_ONLY):
            # A deferred transaction reads from a WAL snapshot and takes no lock at all.
            conn.exec_driver_sql("PRAGMA query_only=ON")
            conn.exec_driver_sql("BEGIN DEFERRED")
        else:
            # A writer takes the write lock up front: a deferred transaction that reads, then
            # writes, fails with "database is locked" instead of waiting when two writers meet.
            conn.exec_driver_sql("PRAGMA query_only=OFF")
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_session_factory(engine: Engine, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions on ``engine``; ``read_only`` ones never take SQLite's write lock."""
    if read_only:
        options = {READ_ONLY: True}
        if engine.dialect.name == "postgresql":
            options["postgresql_readonly"] = True
        engine = engine.execution_options(**options)
    return sessionmaker(engine, expire_on_commit=False)


@cache
def read_only_sessions(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """The read-only twin of a writers' factory: same engine, same pool."""
    return make_session_factory(sessions.kw["bind"], read_only=True)
