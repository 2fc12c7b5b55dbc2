"""mwaa-migrate: the shared layer. Every Lambda's logic lives here as plain functions."""
