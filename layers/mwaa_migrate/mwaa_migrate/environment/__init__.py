"""The environments: the source as read, the target's create request and its own settings, its copy
of DAGs, plugins and requirements, the compatibility checks, the execution roles, and the ways to
reach a webserver."""
