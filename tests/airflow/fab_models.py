"""Imported by the tier's scripts that run in an Airflow installation's own Python: on Airflow 2 a
note's user_id refers to FAB's ab_user, so the ORM must know that model before it reads or writes a
note (the webserver, which shows and writes notes in a real environment, always has it loaded). It
moved from Airflow into the FAB provider in 2.9. Airflow 3's notes keep a plain user id: nothing to
load."""

from __future__ import annotations

import importlib

from airflow import __version__
from packaging.version import Version

if Version(__version__) < Version("3"):
    importlib.import_module(
        "airflow.auth.managers.fab.models"
        if Version(__version__) < Version("2.9")
        else "airflow.providers.fab.auth_manager.models"
    )
