# Step "Converge the farm": `farm up` with the job's own Docker config by default
# ($DOCKER_CONFIG, else ~/.docker), so a docker/login-action login is kept for the push.
set -euo pipefail
source "$FARM_ACTION_PATH/action/lib.sh"

input_line file "$INPUT_FILE"
input_line docker-config "$INPUT_DOCKER_CONFIG"
dir="${INPUT_DOCKER_CONFIG:-${DOCKER_CONFIG:-$HOME/.docker}}"
[ -d "$dir" ] || install -d -m 700 -- "$dir"  # a new one is private; an existing one is left as it is
github_file_set "$GITHUB_ENV" FARM_DOCKER_CONFIG "$dir"
github_file_set "$GITHUB_OUTPUT" docker-config "$dir"
"$BUILDKIT_FARM" up --file="$INPUT_FILE" --docker-config="$dir"
