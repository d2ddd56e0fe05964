# Shared by the action's step scripts (action.yml). Sourced, never run. Inputs arrive as
# environment variables only; nothing here evaluates them or lets them become an option.

# An input error: one line on stderr (the value shown quoted, so a newline or `::` in it can
# start no workflow command), exit 2 as farm does for bad input.
input_error() {
  local message=$1
  printf 'buildkit-farm action: %s\n' "$message" >&2
  exit 2
}

# The value shown in a message: one line, shell-quoted (newlines as $'\n').
quoted() {
  printf '%q' "$1"
}

# input_bool NAME VALUE: "true" or "false" exactly, else an input error.
input_bool() {
  case "$2" in
    true | false) ;;
    *) input_error "input $1 must be \"true\" or \"false\", got $(quoted "$2")" ;;
  esac
}

# input_line NAME VALUE: a value that must fit on one line (a path, a file name).
input_line() {
  case "$2" in
    *$'\n'* | *$'\r'*) input_error "input $1 must be one line, got $(quoted "$2")" ;;
  esac
}

# list_items SEPARATORS VALUE: one item a line, each trimmed, empty ones dropped.
# SEPARATORS: "lines" (build-args, labels, set, vars) or "lines,commas" (tags, platforms).
list_items() {
  local value=$2 item
  if [ "$1" = "lines,commas" ]; then value=${value//,/$'\n'}; fi
  while IFS= read -r item || [ -n "$item" ]; do
    item=${item%$'\r'}
    item="${item#"${item%%[![:space:]]*}"}"
    item="${item%"${item##*[![:space:]]}"}"
    if [ -n "$item" ]; then printf '%s\n' "$item"; fi
  done <<<"$value"
}

# github_file_set FILE NAME VALUE: NAME=VALUE into $GITHUB_ENV or $GITHUB_OUTPUT in the
# delimiter form, with a random delimiter the value cannot contain: a newline in VALUE stays
# inside it and can add no line of its own.
github_file_set() {
  local file=$1 name=$2 value=$3 delimiter
  delimiter="ghadelimiter_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  case "$value" in
    *"$delimiter"*) input_error "value of $name holds its own delimiter" ;;
  esac
  printf '%s<<%s\n%s\n%s\n' "$name" "$delimiter" "$value" "$delimiter" >>"$file"
}
