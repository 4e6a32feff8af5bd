#!/usr/bin/env bash
# Create /work/main/.venv-clients (or $QALA_CLIENTS_VENV): a separate virtual env holding the
# third-party NGSI-LD client libraries the Operate tests drive against Qala's API.
#
# Why separate: ngsildclient 0.5.2 pins httpx<0.24 and rich<13; filip pins pandas<2.4,
# pydantic<2.14 and paho-mqtt~=2.0.0 — all older than what Qala itself needs (pandas 3,
# pydantic 2.14, httpx 0.28). The tests run the clients in a subprocess with this env's python,
# so nothing of theirs is imported into Qala's process. Independent of the Makefile on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${QALA_CLIENTS_VENV:-.venv-clients}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
fi
"$VENV/bin/pip" install --quiet "ngsildclient==0.5.2" "filip"
"$VENV/bin/python" -c "import ngsildclient, filip; print('clients ready:', ngsildclient.__name__, filip.__version__ if hasattr(filip, '__version__') else 'filip')"
