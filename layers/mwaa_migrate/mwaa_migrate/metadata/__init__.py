"""The metadata: deploying, triggering, following and verifying the project's export and import DAGs."""
