"""System of record: SQLAlchemy models, sessions, migrations and repositories."""
