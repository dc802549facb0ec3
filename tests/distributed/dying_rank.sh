#!/usr/bin/env bash
# A rank that dies must end the whole job within seconds, with a message
# naming the rank, not hang. Usage: dying_rank.sh <regex> <mpirun command...>
# runs the command with a 60 s limit and checks: non-zero exit, no timeout,
# under 20 s, and a line matching <regex> (the message naming the rank).
set -uo pipefail
expect=$1
shift
start=$(date +%s)
output=$(timeout 60 "$@" 2>&1)
code=$?
elapsed=$(( $(date +%s) - start ))
echo "$output"
echo "dying_rank: exit code $code after ${elapsed} s"
if [ "$code" -eq 0 ]; then echo "FAILED: the job succeeded although a rank died"; exit 1; fi
if [ "$code" -eq 124 ]; then echo "FAILED: the job hung (killed by the 60 s timeout)"; exit 1; fi
if [ "$elapsed" -gt 20 ]; then echo "FAILED: the job took ${elapsed} s to end"; exit 1; fi
if ! grep -qE "$expect" <<<"$output"; then echo "FAILED: no line matches '$expect'"; exit 1; fi
echo "DYING RANK OK"
