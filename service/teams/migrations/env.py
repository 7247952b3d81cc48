"""Alembic's environment for the usage ledger: run by service.teams.ledger on the connection it opened
(``config.attributes["connection"]``), inside its transaction; there is no offline mode."""
from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
