#!/usr/bin/env bash
# A real Slurm cluster of one node on this machine: embeds a folder with the tiny test model as the job array of
# examples/slurm/embed-array.sbatch (--shard auto from Slurm's variables), merges the parts with
# examples/slurm/merge.sbatch (submitted with --dependency=afterok on the array), and compares the result byte for
# byte with one unsharded `whylesion embed` of the same folder.
#
# Needs root: installs Debian's slurm-wlm and munge if missing, and runs munged, slurmctld and slurmd from a
# private temporary folder (own slurm.conf, key, sockets, ports 16817/16818, spool and logs; nothing under /etc is
# changed). The daemons are stopped by their PIDs at the end, also on failure. Not part of `npm test`.
#   sudo bash scripts/check-slurm.sh [ARRAY_TASKS (default 4)]
set -euo pipefail
tasks=${1:-4}
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "== installing slurm-wlm and munge (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
echo "== $(slurmctld -V), munge $(munged -V 2>&1 | head -1 | awk '{print $2}')"

work=$(mktemp -d -t whylesion-check-slurm-XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ]; then
    echo "== check-slurm FAILED (exit $status); daemon and job logs:"
    tail -n 20 "$work"/*.log "$work"/jobs/*.log 2>/dev/null || true
  fi
  rm -rf "$work"
  echo "== stopped munged, slurmctld and slurmd (PIDs ${pids[*]:-none}); removed $work"
}
trap cleanup EXIT

echo "== building whylesion"
npx tsc -p tsconfig.json
model="$repo/test/fixtures/openclip-tiny/model"
images="$work/images"
# 3 copies of the 4 fixture images and one unreadable file: 13 files, so the shards differ in size and one skips.
for set in s0 s1 s2; do mkdir -p "$images/$set" && cp test/fixtures/openclip-tiny/images/* "$images/$set/"; done
echo 'not an image' > "$images/s1/broken.png"

echo "== starting munged"
head -c 1024 /dev/urandom > "$work/munge.key"
chmod 400 "$work/munge.key"
munged --foreground --force --key-file="$work/munge.key" --socket="$work/munge.socket" --pid-file="$work/munged.pid" \
  --log-file="$work/munged.log" --seed-file="$work/munged.seed" >"$work/munged.out.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$work/munge.socket" ] && break; sleep 0.1; done

host=$(hostname -s)
mkdir -p "$work/state" "$work/spool" "$work/jobs"
cat > "$work/slurm.conf" <<CONF
ClusterName=whylesion-check
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$work/munge.socket
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=check Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$work/slurm.conf"

echo "== starting slurmctld and slurmd ($SLURM_CONF)"
slurmctld -D -i -f "$SLURM_CONF" >>"$work/slurmctld.log" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >>"$work/slurmd.log" 2>&1 &
pids+=($!)
for i in $(seq 120); do
  state=$(sinfo -h -o %t 2>/dev/null || true)
  [ "$state" = idle ] && break
  [ "$i" = 120 ] && { echo "the node never became idle (state: ${state:-none})"; exit 1; }
  sleep 0.5
done
sinfo

export WHYLESION="node $repo/dist/src/cli/main.js"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
echo "== sbatch --array=0-$((tasks - 1)) examples/slurm/embed-array.sbatch, then merge.sbatch after it"
array=$(sbatch --parsable --array=0-$((tasks - 1)) --chdir="$work/jobs" examples/slurm/embed-array.sbatch "$images" "$work/parts" "$model")
merge=$(sbatch --parsable --wait --dependency=afterok:"$array" --chdir="$work/jobs" examples/slurm/merge.sbatch "$work/parts" "$work/merged.parquet")
echo "array job $array and merge job $merge finished"
for log in "$work"/jobs/*.log; do echo "-- $(basename "$log"):"; cat "$log"; done

echo "== the parts (listing.shard from --shard auto)"
for part in "$work"/parts/part-*.parquet; do
  node -e 'const m = JSON.parse(require("fs").readFileSync(process.argv[1] + ".meta.json", "utf8")); console.log(`${require("path").basename(process.argv[1])}: shard ${m.listing.shard.index}/${m.listing.shard.count}, ${m.rows} rows, ${m.skipped.length} skipped, positions ${m.indices.join(",")}`)' "$part"
done

echo "== one unsharded embed of the same folder, outside Slurm"
$WHYLESION embed "$images" --out "$work/whole.parquet" --model "$model" --quiet
cmp "$work/whole.parquet" "$work/merged.parquet"
cmp "$work/whole.parquet.meta.json" "$work/merged.parquet.meta.json"
echo "check-slurm: the merged $tasks-task Slurm array output is byte-identical to the unsharded run ($(stat -c %s "$work/merged.parquet") + $(stat -c %s "$work/merged.parquet.meta.json") bytes; sha256 $(sha256sum "$work/merged.parquet" | cut -c1-16)…)."
