"""Local emulation of the AWS services the pipeline uses that moto does not cover (MWAA)."""
