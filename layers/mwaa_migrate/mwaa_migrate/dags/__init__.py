"""The export and import DAGs and their shared library, uploaded as files into an environment's DAG folder."""
