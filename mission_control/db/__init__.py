"""Storage: SQLAlchemy Core tables, engines and Alembic migrations for the registry database."""
