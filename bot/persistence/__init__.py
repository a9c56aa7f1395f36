"""Storage: SQLAlchemy 2 tables, engine setup, migrations."""
