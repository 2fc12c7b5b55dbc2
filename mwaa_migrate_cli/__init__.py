"""mwaa-migrate, the command-line tool: plan a migration, start it, follow it, read its report."""
