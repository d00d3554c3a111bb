#!/usr/bin/env bash
# The cpu profile of chapters 5 and 6, experiment by experiment, resumable (hours to days on a 2-core CPU).
#
#   nohup tools/cpu_queue.sh > cpu_queue.log 2>&1 &      # from the repository root; run it again to resume
#
# Runs from a snapshot (a detached git worktree of HEAD, outside the repository), so that editing or
# committing in the work tree while it runs cannot change the code it imports; results are written into
# this repository's results/ (commit them as they land), checkpoints into $THESIS_RUNS_CACHE (default
# ~/.cache/thesis_lib/runs: outside the work tree, so a fresh checkout resumes them). Each `reproduce`
# skips what is finished and resumes what is not. Order: the ResNet chapter-5 tables first, the
# full-profile AutoAttack of the light CNNs (the last piece of chapter 4 at full scale: all 10,000 test
# images, hours), then the VGG table and the KAF shapes of its models, what builds on the tables, the seed
# repeats and the ResNet-56 ablation.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
SNAP=${THESIS_SNAPSHOT:-$(dirname "$REPO")/cpu_queue_snapshot}
if [ "${1:-}" != "--in-snapshot" ]; then
    cd "$REPO"
    git worktree remove --force "$SNAP" 2>/dev/null || rm -rf "$SNAP"
    git worktree prune
    git worktree add --detach "$SNAP" HEAD
    exec bash "$SNAP/tools/cpu_queue.sh" --in-snapshot "$REPO"
fi
REPO=$2
PY=${PYTHON:-$REPO/.venv/bin/python}
cd "$SNAP"
export THESIS_RUNS_CACHE=${THESIS_RUNS_CACHE:-$HOME/.cache/thesis_lib/runs}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} THESIS_NO_PROGRESS=1 PYTHONUNBUFFERED=1
if [ -z "${THESIS_DATA:-}" ] && [ -f "$REPO/../shared/data/cifar10-jpeg.tar.gz" ]; then
    export THESIS_DATA=$(realpath "$REPO/../shared/data/cifar10-jpeg.tar.gz")
fi
"$PY" -c "import thesis_lib; print('thesis_lib from', thesis_lib.__file__)"
QUEUE=(
    "cpu resnet20_at"
    "cpu resnet_standard"
    "full autoattack_light_cnn"
    "cpu vgg"
    "cpu kaf_shapes"
    "cpu autoattack"
    "cpu lipschitz"
    "cpu resnet20_seeds"
    "cpu resnet56_fix"
)
for item in "${QUEUE[@]}"; do
    read -r profile exp <<< "$item"
    echo "$(date -u +%FT%TZ) reproduce --profile $profile --only $exp"
    "$PY" -m thesis_lib reproduce --profile "$profile" --only "$exp" --results-dir "$REPO/results"
done
echo "$(date -u +%FT%TZ) queue finished"
