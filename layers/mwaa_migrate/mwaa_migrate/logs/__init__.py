"""The task logs: their names, the listing of the source's log streams, the copy and its summary."""
