#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for trying the SLURM executor before a real cluster.
#
#   deploy/slurm/local-cluster.sh start    # munged, slurmctld, slurmd; prints the SLURM_CONF to export
#   deploy/slurm/local-cluster.sh stop     # stops the three daemons and removes the state directory
#   deploy/slurm/local-cluster.sh status
#
# Debian's `slurm-wlm` and `munge` packages (`make test-deps` installs them). Runs as root without
# systemd: everything (slurm.conf, munge key and socket, spool, state, logs, the job-completion log)
# lives in one temporary directory, GENZOO_SLURM_DIR (default /tmp/genzoo-slurm). Settings:
#   GENZOO_SLURM_DIR    state directory
#   GENZOO_SLURM_PORT   slurmctld port (slurmd uses PORT+1; default 6817)
#   GENZOO_SLURM_CPUS   CPUs the node advertises (default: nproc)
#   GENZOO_SLURM_MEM    memory the node advertises, in MB (default: 90% of this machine's)
#   GENZOO_SLURM_GPUS   fake `gpu` gres count, so `--gres=gpu:1` requests schedule (default 2; 0: none)
# The node may advertise more CPUs and memory than the machine has (SlurmdParameters=config_overrides;
# nothing enforces them: task/none, no cgroups), so the executor's default requests (4 CPUs and 16G
# per step, 8 CPUs and 64G per GPU step) schedule on a small machine too.
# Partitions: `cpu` (default) and `gpu`, both on this node. Finished jobs are one line each in
# $GENZOO_SLURM_DIR/jobcomp.log (jobcomp/filetxt: there is no slurmdbd, hence no sacct).
set -euo pipefail

DIR="${GENZOO_SLURM_DIR:-/tmp/genzoo-slurm}"
PORT="${GENZOO_SLURM_PORT:-6817}"
CPUS="${GENZOO_SLURM_CPUS:-$(nproc)}"
GPUS="${GENZOO_SLURM_GPUS:-2}"
HOST="$(hostname -s)"
CONF="$DIR/slurm.conf"

need() {
  for bin in munged mungekey slurmctld slurmd sbatch; do
    command -v "$bin" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin" command -v "$bin" >/dev/null 2>&1 || {
      echo "local-cluster.sh: $bin not found: apt-get install slurm-wlm munge" >&2; exit 2; }
  done
  [ "$(id -u)" = 0 ] || { echo "local-cluster.sh: must run as root (munged and slurmd need it)" >&2; exit 2; }
}

write_conf() {
  local mem gres_line=""
  mem="${GENZOO_SLURM_MEM:-$(awk '/MemTotal/{print int($2/1024*0.9)}' /proc/meminfo)}"
  [ "$GPUS" -gt 0 ] && gres_line="Gres=gpu:$GPUS"
  cat >"$CONF" <<EOF
ClusterName=genzoo-local
SlurmctldHost=$HOST
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.log
GresTypes=gpu
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
ReturnToService=2
NodeName=$HOST CPUs=$CPUS RealMemory=$mem $gres_line State=UNKNOWN
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$HOST MaxTime=INFINITE State=UP
EOF
  if [ "$GPUS" -gt 0 ]; then
    # Fake devices: the gpu plugin counts device files; nothing opens them (task/none, no cgroups).
    mkdir -p "$DIR/dev"
    for i in $(seq 0 $((GPUS - 1))); do ln -sf /dev/null "$DIR/dev/gpu$i"; done
    echo "NodeName=$HOST Name=gpu File=$DIR/dev/gpu[0-$((GPUS - 1))]" >"$DIR/gres.conf"
  else
    : >"$DIR/gres.conf"
  fi
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  need
  export PATH="$PATH:/usr/sbin"
  if running "$DIR/slurmctld.pid"; then echo "already running: export SLURM_CONF=$CONF"; return 0; fi
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/munge"
  chmod 755 "$DIR/munge"
  write_conf
  [ -f "$DIR/munge/munge.key" ] || mungekey -c -k "$DIR/munge/munge.key" >/dev/null
  chown -R munge:munge "$DIR/munge"
  chmod 400 "$DIR/munge/munge.key"
  runuser -u munge -- munged --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
    --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed"
  export SLURM_CONF="$CONF"
  slurmctld -f "$CONF"
  slurmd -f "$CONF" -N "$HOST"
  for _ in $(seq 1 60); do
    if sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      echo "export SLURM_CONF=$CONF"
      return 0
    fi
    sleep 0.5
  done
  echo "local-cluster.sh: the node did not come up; see $DIR/slurmctld.log and $DIR/slurmd.log" >&2
  exit 1
}

stop_pid() {
  local pidfile="$1"
  running "$pidfile" || return 0
  local pid; pid="$(cat "$pidfile")"
  kill "$pid"
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
}

stop() {
  stop_pid "$DIR/slurmd.pid"
  stop_pid "$DIR/slurmctld.pid"
  stop_pid "$DIR/munge/munged.pid"
  rm -rf "$DIR"
}

status() {
  if running "$DIR/slurmctld.pid"; then
    SLURM_CONF="$CONF" sinfo
    echo "export SLURM_CONF=$CONF"
  else
    echo "not running ($DIR)"; exit 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
