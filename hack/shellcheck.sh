#!/usr/bin/env bash
# Runs shellcheck on every shell script git tracks: *.sh files and executables
# with a sh/bash shebang (make lint runs it).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v shellcheck >/dev/null || { echo "shellcheck is not installed (hack/setup.sh installs it)" >&2; exit 1; }
scripts=()
while IFS= read -r -d '' path; do
  [[ -f "$path" ]] || continue
  if [[ "$path" == *.sh ]] || { [[ -x "$path" ]] && head -c 100 "$path" | grep -E '^#!.*\b(ba)?sh\b' >/dev/null; }; then
    scripts+=("$path")
  fi
done < <(git ls-files -z --cached --others --exclude-standard)
shellcheck --external-sources --format=gcc "${scripts[@]}"
