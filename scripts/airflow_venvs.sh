#!/usr/bin/env bash
# Real Apache Airflow installations for the `airflow` test tier, one virtualenv per version under
# .airflow/venvs/VERSION (gitignored; kept between runs, rebuilt only when missing).
#   scripts/airflow_venvs.sh 2.7.2 2.10.3
#
# Airflow's constraints files cannot be reached from here, so each version is resolved with uv's
# --exclude-newer set to a few days after that release: the dependency set Airflow's own CI
# resolved at the time, not today's releases that an old Airflow never ran with. Python 3.11 is
# the Python MWAA runs these versions on (3.12 for Airflow 3). The packages are what an MWAA
# environment already has and the DAGs use: Airflow, psycopg2 (its PostgreSQL driver) and boto3;
# Airflow 3 also needs asyncpg for PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="${AIRFLOW_TIER_HOME:-$PWD/.airflow}"
PYTHON="${AIRFLOW_PYTHON:-$(command -v python3.11 || true)}"
if [ -z "$PYTHON" ]; then
  echo "python3.11 is needed for the Airflow virtualenvs (MWAA runs Airflow 2.7-2.11 on it)" >&2
  exit 1
fi

# The day after which no package is taken, per Airflow version (its release date plus a few days).
resolved_as_of() {
  case "$1" in
    2.7.2) echo 2023-10-20 ;;
    2.8.1) echo 2024-01-26 ;;
    2.9.2) echo 2024-06-17 ;;
    2.10.1) echo 2024-09-12 ;;
    2.10.3) echo 2024-11-10 ;;
    2.11.0) echo 2025-05-28 ;;
    3.0.6) echo 2025-09-10 ;;
    *) echo "no resolution date for Airflow $1: add one to $0" >&2; return 1 ;;
  esac
}

# Pins a version needs beyond the date: what its own constraints file pinned and a newer release
# (out before the date) broke. Airflow 2.8.1 with Flask-Session 0.6 (2024-01-16) fails at start-up,
# even in `airflow db migrate` (SqlAlchemySessionInterface's new arguments); its constraints had 0.5.0.
pins() {
  case "$1" in
    2.8.1) echo "flask-session==0.5.0" ;;
  esac
}

# Python 3.12 for Airflow 3 (MWAA runs 3.0 on it): pyenv's own, when the shim needs a version.
python312() {
  if command -v pyenv >/dev/null 2>&1; then
    local version
    version="$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.|$)' | tail -n 1)"
    if [ -n "$version" ]; then
      echo "$(pyenv prefix "$version")/bin/python3.12"
      return
    fi
  fi
  command -v python3.12
}

mkdir -p "$ROOT"
UV="$ROOT/tools/bin/uv"
if [ ! -x "$UV" ]; then
  "$PYTHON" -m venv "$ROOT/tools"
  "$ROOT/tools/bin/pip" install --quiet uv
fi

for version in "$@"; do
  venv="$ROOT/venvs/$version"
  if [ -f "$venv/.installed" ]; then
    continue
  fi
  date="$(resolved_as_of "$version")"
  start=$SECONDS
  rm -rf "$venv"
  python="$PYTHON"
  extra=()
  if [ "${version%%.*}" -ge 3 ]; then
    python="${AIRFLOW3_PYTHON:-$(python312)}"
    extra=(asyncpg)
  fi
  read -r -a pinned <<<"$(pins "$version")"
  "$UV" venv --quiet --python "$python" "$venv"
  VIRTUAL_ENV="$venv" "$UV" pip install --quiet --exclude-newer "$date" \
    "apache-airflow==$version" psycopg2-binary boto3 "${extra[@]}" "${pinned[@]}"
  "$venv/bin/python" -c "import airflow, psycopg2, boto3" 2>/dev/null
  touch "$venv/.installed"
  echo "Airflow $version installed in $venv ($((SECONDS - start)) s)"
done
