#!/bin/sh
# Creates (once) a virtualenv with faststream[kafka] for the bench's "peer" comparison and prints
# its Python's path as the last line of stdout. On failure it prints one line saying why and
# exits non-zero; the bench then reports "peer: skipped: <reason>". Everything else goes to
# stderr, because the bench reads the last line of stdout.
set -u

# This file is erp-events-bench/peer/setup.sh; the venv goes in the workspace's target/.
workspace=$(CDPATH= cd -- "$(dirname -- "$0")/../.." && pwd) || { echo "cannot find the workspace of $0"; exit 1; }
venv="$workspace/target/faststream-venv"
python="$venv/bin/python"
requirement="faststream[kafka]~=0.7.8"  # 0.7.x from 0.7.8: the API the script uses

if ! command -v python3 >/dev/null 2>&1; then
    echo "python3 is not installed"
    exit 1
fi

# Already set up: nothing to install (no network, no pip run).
if [ -x "$python" ] && "$python" -c "import faststream.kafka, aiokafka, pydantic" >/dev/null 2>&1; then
    echo "$python"
    exit 0
fi

echo "peer/setup.sh: creating $venv and installing $requirement from PyPI" >&2
mkdir -p "$workspace/target" || { echo "cannot create $workspace/target"; exit 1; }
if ! python3 -m venv "$venv" >&2; then
    echo "python3 -m venv failed (is the venv module installed, e.g. python3-venv?)"
    exit 1
fi
if ! "$python" -m pip install --quiet --disable-pip-version-check "$requirement" >&2; then
    echo "pip install $requirement failed (see stderr above)"
    exit 1
fi
if ! "$python" -c "import faststream.kafka, aiokafka, pydantic" >&2; then
    echo "$requirement was installed but cannot be imported"
    exit 1
fi
echo "$python"
