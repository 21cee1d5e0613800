#!/bin/sh
# A one-node SLURM cluster for the tests and the vignette: munged, slurmctld
# and slurmd, with every key, socket, state, log and PID file under one
# folder (TIDYVISION_SLURM_DIR, default /tmp/tidyvision-slurm). Nothing under
# /etc, /run or /var is touched, and `stop` ends only the daemons this script
# started, by their PID files.
#
#   tools/slurm.sh start    # idempotent; prints the line to export SLURM_CONF
#   tools/slurm.sh status
#   tools/slurm.sh stop
#
# Clients (sbatch, squeue, scancel, R) need SLURM_CONF=$DIR/slurm.conf;
# `. $DIR/env` sets it.
set -eu

DIR=${TIDYVISION_SLURM_DIR:-/tmp/tidyvision-slurm}
CONF=$DIR/slurm.conf
SOCKET=$DIR/munge/munge.socket
export SLURM_CONF="$CONF"

running() {  # running <name>: its PID file names a live process
  [ -s "$DIR/run/$1.pid" ] && kill -0 "$(cat "$DIR/run/$1.pid")" 2>/dev/null
}

write_conf() {
  host=$(hostname -s)
  mem=$(free -m | awk '/^Mem:/ {print int($7 * 0.9)}')
  cat > "$CONF" <<CONF
ClusterName=tidyvision
SlurmctldHost=$host
AuthType=auth/munge
AuthInfo=socket=$SOCKET
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${TIDYVISION_SLURMCTLD_PORT:-6817}
SlurmdPort=${TIDYVISION_SLURMD_PORT:-6818}
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=1
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=60
NodeName=$host CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
}

start_munge() {
  running munged && return 0
  mkdir -p "$DIR/munge"
  chmod 755 "$DIR/munge"
  if [ ! -s "$DIR/munge/munge.key" ]; then
    dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 2>/dev/null
  fi
  chmod 600 "$DIR/munge/munge.key"
  munged --force --key-file="$DIR/munge/munge.key" --socket="$SOCKET" \
    --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
    --seed-file="$DIR/munge/munged.seed"
}

wait_idle() {
  i=0
  while [ $i -lt 100 ]; do
    state=$(sinfo -h -o %T 2>/dev/null | head -1 || true)
    case "$state" in idle*|mix*|alloc*) return 0 ;; esac
    sleep 0.1
    i=$((i + 1))
  done
  echo "slurm.sh: the node did not become idle; see $DIR/log" >&2
  return 1
}

start() {
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/run"
  chmod 755 "$DIR"
  start_munge
  [ -s "$CONF" ] || write_conf
  running slurmctld || slurmctld -f "$CONF"
  running slurmd || slurmd -f "$CONF"
  wait_idle
  echo "export SLURM_CONF=$CONF" > "$DIR/env"
  echo "export SLURM_CONF=$CONF"
}

stop() {
  for name in slurmd slurmctld munged; do
    if running "$name"; then
      pid=$(cat "$DIR/run/$name.pid")
      kill "$pid"
      i=0
      while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    fi
    rm -f "$DIR/run/$name.pid"
  done
}

status() {
  for name in munged slurmctld slurmd; do
    if running "$name"; then echo "$name: running (pid $(cat "$DIR/run/$name.pid"))"; else echo "$name: stopped"; fi
  done
  running slurmctld && sinfo || true
}

case "${1:-status}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
