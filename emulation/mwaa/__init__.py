"""An emulator of Amazon MWAA for tests and the local demo (moto has no MWAA).

It serves, over plain HTTP on 127.0.0.1 (server.py):

* the MWAA control API (control_api.py: rest-json, botocore's ``mwaa`` 2020-07-01 model). Requests
  are validated against botocore's own model (service_model.py), as the service does; responses follow
  the model's shapes; errors carry the header ``x-amzn-ErrorType`` and the model's HTTP status
  (responses.py), so botocore raises its modeled exceptions;
* the Airflow web server's ``/aws_mwaa/cli`` endpoint (airflow_cli.py: Bearer token from
  CreateCliToken, body the Airflow command line, answer ``{"stdout": base64, "stderr": base64}``);
* ``InvokeRestApi``, Airflow's REST API through MWAA's API (rest_api.py).

What an emulated environment holds, and how its DAG runs are carried out, is environment.py.

boto3 reaches it with ``AWS_ENDPOINT_URL_MWAA=http://127.0.0.1:PORT`` and
``AWS_DISABLE_HOST_PREFIX_INJECTION=true``.

Everything slow on AWS is deterministic here: an environment answers CREATING (or UPDATING) to a set
number of GetEnvironment calls, then AVAILABLE; a DAG uploaded to the environment's DAG folder shows
up after a set number of ``dags list`` calls; a DAG run goes queued -> running -> success/failed as
its state is read. No wall clock is involved except through ``clock`` (token expiry, dates).
"""

from emulation.mwaa.control_api import MwaaEmulator
from emulation.mwaa.environment import DagRunResult, DagRuntime, EmulatedEnvironment
from emulation.mwaa.service_model import service_model

__all__ = ["DagRunResult", "DagRuntime", "EmulatedEnvironment", "MwaaEmulator", "service_model"]
