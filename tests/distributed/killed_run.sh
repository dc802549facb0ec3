#!/usr/bin/env bash
# A 2-rank run killed with SIGKILL mid-epoch and resumed from its last
# checkpoint ends with the parameters of an uninterrupted 2-rank run, bit for
# bit (dropout on); resuming that checkpoint on 1 rank is refused by name.
# Usage: killed_run.sh <dir> <mpirun> <np flag> <program> [mpirun options...]
set -uo pipefail
dir=$1 mpirun=$2 np=$3 program=$4
shift 4
mpi=("$mpirun" "$@")
mkdir -p "$dir" && rm -f "$dir"/whole.npz "$dir"/killed.npz
job() {  # job <ranks> <phase>: runs one mpirun job, 60 s at most
    timeout 60 "${mpi[@]}" "$np" "$1" "$program" run "$dir" "$2" 2>&1
}
hash_of() { sed -n 's/^final hash \([0-9a-f]*\)$/\1/p' <<<"$1"; }

whole=$(job 2 whole) || { echo "$whole"; echo "FAILED: the uninterrupted run failed"; exit 1; }
killed=$(job 2 kill)
code=$?
echo "$killed" | tail -5
if [ "$code" -eq 0 ] || [ "$code" -eq 124 ]; then echo "FAILED: the killed run exited with $code"; exit 1; fi
[ -f "$dir/killed.npz" ] || { echo "FAILED: the killed run left no checkpoint"; exit 1; }
if ls "$dir" | grep -q tmp; then echo "FAILED: a temporary file was left behind: $(ls "$dir")"; exit 1; fi
refused=$(job 1 resume)
code=$?
echo "$refused" | grep -m1 "rank 0: error"
if [ "$code" -eq 0 ] || ! grep -q "written by a run on 2 ranks; this run has 1 rank" <<<"$refused"; then
    echo "$refused"; echo "FAILED: a 2-rank checkpoint was not refused on 1 rank"; exit 1
fi
resumed=$(job 2 resume) || { echo "$resumed"; echo "FAILED: the resumed run failed"; exit 1; }
echo "uninterrupted: $(hash_of "$whole"), killed at step 20 and resumed: $(hash_of "$resumed")"
if [ -z "$(hash_of "$whole")" ] || [ "$(hash_of "$whole")" != "$(hash_of "$resumed")" ]; then
    echo "FAILED: the resumed run differs from the uninterrupted one"; exit 1
fi
echo "KILLED RUN OK"
