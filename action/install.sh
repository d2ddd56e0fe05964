# Step "Install farm (pinned)": a private venv in $RUNNER_TEMP with this repository at the
# ref the workflow names and its dependencies at action-constraints.txt's versions. The venv
# stays off $GITHUB_PATH (later steps keep their own python and pip); they call farm by the
# path in $BUILDKIT_FARM or the action's `farm` output.
set -euo pipefail
source "$FARM_ACTION_PATH/action/lib.sh"

input_line python "$INPUT_PYTHON"
venv="$RUNNER_TEMP/buildkit-farm-venv"
"$INPUT_PYTHON" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  --constraint "$FARM_ACTION_PATH/action-constraints.txt" "$FARM_ACTION_PATH"
"$venv/bin/farm" --version
github_file_set "$GITHUB_ENV" BUILDKIT_FARM "$venv/bin/farm"
github_file_set "$GITHUB_OUTPUT" farm "$venv/bin/farm"
