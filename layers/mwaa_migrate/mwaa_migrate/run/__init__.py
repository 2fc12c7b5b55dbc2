"""The run's bookkeeping: the plan, the lock, the grants, the cutover record, the outcome of a
failure, the report and the notifications."""
