# Step "Build, push and publish": the inputs as `farm build` arguments, then the outputs.
# Every value is one argument in the --option=VALUE form, target names come after `--`:
# no input can become an option or a command.
set -euo pipefail
source "$FARM_ACTION_PATH/action/lib.sh"
farm_python="${BUILDKIT_FARM%/*}/python" # the venv's, for reading farm's JSON

input_line file "$INPUT_FILE"
input_line report "$INPUT_REPORT"
for name in push no-cache verify-run atomic; do
  var="INPUT_${name//-/_}"
  var=${var^^}
  input_bool "$name" "${!var}"
done

set -f # target names are words, never globs
read -r -d '' -a targets <<<"${INPUT_TARGETS//,/ }" || true
set +f

report="${INPUT_REPORT:-$RUNNER_TEMP/farm-report.json}"
metadata="$RUNNER_TEMP/farm-metadata.json"
rm -f -- "$metadata" # a previous run's must not pass for this one's
args=(build --file="$INPUT_FILE" --docker-config="$FARM_DOCKER_CONFIG" --progress=plain)
args+=(--report="$report" --metadata-file="$metadata")

mapfile -t tags < <(list_items lines,commas "$INPUT_TAGS")
mapfile -t labels < <(list_items lines "$INPUT_LABELS")
if [ "${#tags[@]}" -gt 0 ] || [ "${#labels[@]}" -gt 0 ]; then
  # Tags and labels belong to one image: the target named in `targets`, or the file's only one.
  where="the targets input names"
  if [ "${#targets[@]}" -eq 0 ]; then
    names=$("$BUILDKIT_FARM" validate --json --file="$INPUT_FILE" | "$farm_python" "$FARM_ACTION_PATH/action/outputs.py" target-names)
    mapfile -t targets < <(list_items lines "$names")
    where="the file has"
  fi
  if [ "${#targets[@]}" -ne 1 ]; then
    input_error "tags and labels apply to one target: name it in the targets input ($where ${#targets[@]}: $(quoted "${targets[*]}"))"
  fi
fi
for tag in ${tags[@]+"${tags[@]}"}; do args+=(--tag="$tag"); done
for label in ${labels[@]+"${labels[@]}"}; do args+=(--label="$label"); done
while IFS= read -r item; do args+=(--build-arg="$item"); done < <(list_items lines "$INPUT_BUILD_ARGS")
while IFS= read -r item; do args+=(--var="$item"); done < <(list_items lines "$INPUT_VARS")
while IFS= read -r item; do args+=(--set="$item"); done < <(list_items lines "$INPUT_SET")
mapfile -t platforms < <(list_items lines,commas "$INPUT_PLATFORMS")
if [ "${#platforms[@]}" -gt 0 ]; then
  joined=$(IFS=,; printf '%s' "${platforms[*]}")
  args+=(--platform="$joined")
fi
if [ "$INPUT_PUSH" = false ]; then args+=(--no-push); fi
if [ "$INPUT_NO_CACHE" = true ]; then args+=(--no-cache); fi
if [ "$INPUT_VERIFY_RUN" = true ]; then args+=(--verify-run); fi
if [ "$INPUT_ATOMIC" = true ]; then args+=(--atomic); fi
args+=(-- ${targets[@]+"${targets[@]}"})

status=0
"$BUILDKIT_FARM" "${args[@]}" || status=$?
# The outputs, also after a failed build: the report says what happened.
"$farm_python" "$FARM_ACTION_PATH/action/outputs.py" outputs "$report" "$metadata" >>"$GITHUB_OUTPUT"
exit "$status"
