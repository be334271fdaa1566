#!/usr/bin/env bash
# The Jupyter people run today (JupyterLab 4, Notebook 7, jupyter_server 2) in a Python venv built
# offline from the local wheel index pip is configured with, cached outside the clone so CI's fresh
# clones and every worktree on the machine build it once.
#   modern-jupyter-venv.sh        prints the venv's folder (last line), building it if needed
#
# The cache key is this file's content plus the interpreter: change the recipe or the Python and a
# new venv is built beside the old one. A venv is not relocatable, so it is built in a folder of its
# own and published by creating the symlink modern-jupyter-KEY to it; whoever creates the link
# first wins, and a concurrent builder that loses removes its copy. Never reaches the network.
set -euo pipefail
die() { echo "modern-jupyter-venv: $*" >&2; exit 1; }

python=${MODERN_JUPYTER_PYTHON:-python3}
command -v "$python" >/dev/null || die "$python not found on PATH; install Python 3 (apt-get install -y python3 python3-venv)"
"$python" -m venv --help >/dev/null 2>&1 || die "$python has no venv module; apt-get install -y python3-venv"

cache=${NOTEBOOK_GATEWAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/notebook-gateway}
key=$({ cat "$0"; "$python" -c 'import sys; print(sys.executable, sys.version)'; } | sha256sum | cut -c1-16)
venv=$cache/modern-jupyter-$key
if [[ -x $venv/bin/jupyter ]]; then echo "$venv"; exit 0; fi

# The local index: file:// index URLs (PEP 503 folders whose wheels sit in files/) and find-links
# folders, from pip's configuration (files and PIP_* variables alike).
links=()
while IFS= read -r x; do
  case $x in
    file://*) d=${x#file://}; d=${d%/}; d=${d%/simple}; [[ -d $d/files ]] && links+=(--find-links "$d/files") ;;
    /*) [[ -d $x ]] && links+=(--find-links "$x") ;;
  esac
done < <("$python" -m pip config list 2>/dev/null | sed -nE "s/.*(index-url|find-links)='([^']*)'.*/\2/p" | tr ' ' '\n')
[[ ${#links[@]} -gt 0 ]] || die "pip has no local wheel index configured ('$python -m pip config list' shows no find-links folder and no file:// index-url or extra-index-url); point pip at the folder holding the jupyterlab and notebook wheels and their dependencies, e.g. 'pip config set global.find-links /opt/wheels' or PIP_FIND_LINKS=DIR, then run again"

mkdir -p "$cache"
[[ -L $venv ]] && rm -f "$venv" # its target is gone
build=$(mktemp -d "$venv.build-XXXXXX")
trap 'rm -rf "$build"' EXIT
started=$SECONDS
"$python" -m venv "$build" >&2
"$build/bin/pip" install -q --no-index "${links[@]}" jupyterlab notebook >&2 \
  || die "pip could not install jupyterlab and notebook from the local wheel index (${links[*]}); the index lacks them or a dependency for $("$python" --version)"
"$build/bin/jupyter" --version | grep -E '^(jupyterlab|notebook|jupyter_server) ' >&2
if ln -sn "$build" "$venv" 2>/dev/null; then
  trap - EXIT
  echo "modern-jupyter-venv: built $venv in $((SECONDS - started)) s" >&2
elif [[ ! -x $venv/bin/jupyter ]]; then
  die "$venv exists but holds no jupyter; remove it and run again"
fi
echo "$venv"
