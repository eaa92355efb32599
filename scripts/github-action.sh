#!/usr/bin/env bash
# The composite action's step (action.yml): finds rehearse, runs the gate with GitHub
# annotations, appends the Markdown summary to the job's summary page, and exits with
# rehearse's own exit code. Inputs arrive as INPUT_* variables (action.yml sets them).
set -uo pipefail

corpora=${INPUT_CORPORA:-corpora/}
materializers=${INPUT_MATERIALIZERS:?the materializers input is required (-m: SQL definitions or livestore:<module>)}
summary=${RUNNER_TEMP:-${TMPDIR:-/tmp}}/rehearse-summary-$$.md

# The rehearse to run: one the app installed from npm, else the release binary for this runner.
if [ -n "${INPUT_BINARY:-}" ]; then
  rehearse=("$INPUT_BINARY")
elif [ -x node_modules/.bin/rehearse ]; then
  rehearse=(node_modules/.bin/rehearse)
else
  version=${INPUT_VERSION:-}
  if [ -z "$version" ]; then
    case "${ACTION_REF:-}" in
      v[0-9]*) version=${ACTION_REF#v} ;;
      *)
        echo "::error title=rehearse::no rehearse in node_modules (npm i -D rehearse) and no version input to download; set with: version: X.Y.Z" >&2
        exit 2
        ;;
    esac
  fi
  case "${RUNNER_OS:-}-${RUNNER_ARCH:-}" in
    Linux-X64) target=x86_64-unknown-linux-gnu ;;
    Linux-ARM64) target=aarch64-unknown-linux-gnu ;;
    macOS-X64) target=x86_64-apple-darwin ;;
    macOS-ARM64) target=aarch64-apple-darwin ;;
    Windows-X64) target=x86_64-pc-windows-msvc ;;
    *)
      echo "::error title=rehearse::no rehearse release binary for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}" >&2
      exit 2
      ;;
  esac
  dir=${RUNNER_TEMP:-/tmp}/rehearse-$version
  mkdir -p "$dir"
  base=https://github.com/${ACTION_REPOSITORY:-rehearse/rehearse}/releases/download/v$version
  if [ "$target" = x86_64-pc-windows-msvc ]; then
    curl -fsSL "$base/rehearse-$target.zip" -o "$dir/r.zip" && unzip -q -o "$dir/r.zip" -d "$dir" || exit 2
    rehearse=("$dir/rehearse-$target/rehearse.exe")
  else
    curl -fsSL "$base/rehearse-$target.tar.gz" | tar -xz -C "$dir" || exit 2
    rehearse=("$dir/rehearse-$target/rehearse")
  fi
fi

args=(check "$corpora" -m "$materializers" --format human --format github --markdown "$summary")
[ -n "${INPUT_BASELINE:-}" ] && args+=(--baseline "$INPUT_BASELINE")
[ -n "${INPUT_JUNIT:-}" ] && args+=(--junit "$INPUT_JUNIT")
# Extra arguments, split as a shell would split words (no globbing).
if [ -n "${INPUT_ARGS:-}" ]; then
  set -f
  # shellcheck disable=SC2206
  extra=($INPUT_ARGS)
  set +f
  args+=("${extra[@]}")
fi

"${rehearse[@]}" "${args[@]}"
code=$?
if [ -s "$summary" ] && [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  cat "$summary" >> "$GITHUB_STEP_SUMMARY"
fi
rm -f "$summary"
[ -n "${GITHUB_OUTPUT:-}" ] && echo "exit-code=$code" >> "$GITHUB_OUTPUT"
exit "$code"
