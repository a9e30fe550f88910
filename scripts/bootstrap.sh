# Sourced by the other scripts: make uv and every supported Python visible.
# uv comes from PATH if present, else from a private virtualenv made with pip.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if command -v pyenv >/dev/null 2>&1 && [ -z "${PYENV_VERSION:-}" ]; then
  # pyenv exposes one Python at a time; list every supported one so uv finds them.
  PYENV_VERSION=$(pyenv versions --bare | grep -E '^3\.1[1-3]\.[0-9]+$' | paste -sd: - || true)
  export PYENV_VERSION
fi
# Use the interpreters on this machine; never download one.
export UV_PYTHON_DOWNLOADS=never

if ! command -v uv >/dev/null 2>&1; then
  tools="$ROOT/.cache/bootstrap"
  if [ ! -x "$tools/bin/uv" ]; then
    echo "uv not found: installing it into $tools with pip" >&2
    python3 -m venv "$tools"
    "$tools/bin/python" -m pip install --quiet --disable-pip-version-check uv
  fi
  export PATH="$tools/bin:$PATH"
fi
