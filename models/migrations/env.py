"""Alembic environment: runs on the engine openear hands over (see models.db.alembic_config)."""

from alembic import context
from sqlalchemy import Engine

from models.orm import Base

config = context.config
engine = config.attributes.get("engine")
if not isinstance(engine, Engine):
    from models.db import make_engine

    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("run migrations through `openear db upgrade` (or set sqlalchemy.url)")
    engine = make_engine(url)



def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    """Dialect-specific search structures of migration 0004 live only in migrations, not in the ORM."""
    if type_ == "table" and name and "_fts" in name:
        return False
    return not (type_ == "index" and name and name.startswith("ix_trgm_"))


with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
