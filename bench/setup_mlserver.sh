#!/usr/bin/env bash
# MLServer 1.7.1 in a venv of its own (its pins differ from KServe's), for bench/run.py's
# baseline. torch is not installed twice: a .pth file lets this venv import the project venv's
# torch, after its own packages. Idempotent; the venv lives outside the work tree.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${MLSERVER_VENV:-$HOME/.cache/modelrollout/venv-mlserver}"
if [ ! -x "$VENV/bin/mlserver" ]; then
    python3.11 -m venv "$VENV"
    "$VENV/bin/pip" install -q mlserver==1.7.1
fi
site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$site/modelrollout-torch.pth"
"$VENV/bin/python" -c 'import mlserver, torch; print("mlserver", mlserver.__version__, "torch", torch.__version__)'
