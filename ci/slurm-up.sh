#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, to try `sweep --executor slurm` against a real scheduler (and for the
# tests in tests/test_slurm_real.py). Meant for a throwaway container or VM: it installs Debian's slurm-wlm and
# munge with apt, writes /etc/slurm/slurm.conf and starts munged, slurmctld and slurmd as root, without systemd.
#
#   sudo bash ci/slurm-up.sh          install (if sbatch is missing), configure, start; waits until the node is idle
#   sudo bash ci/slurm-up.sh --stop   stop the daemons this script started (slurmctld, slurmd, munged)
#
# No accounting daemon (slurmdbd): submitit then logs "Bypassing sacct error" and reads a task's state from its own
# result files, which is all `sweep` needs (measured: tests/test_slurm_real.py passes without it). One partition,
# `debug`, holding this machine's CPUs and memory; no GPUs (gres) are configured. Exits 0 with a message and
# starts nothing where it cannot run (not root, no apt-get and no Slurm installed).
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
MARK="# written by model-collapse-repro ci/slurm-up.sh"
STATE=/var/spool/slurmctld
SPOOL=/var/spool/slurmd
LOGS=/var/log/slurm
PIDS=/run/slurm-ci

say() { echo "slurm-up: $*"; }

stop() {
    # Only the daemons whose pid files this script wrote.
    for name in slurmd slurmctld munged; do
        f=$PIDS/$name.pid
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" && say "stopped $name (pid $pid)"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$f"
    done
}

if [ "${1:-}" = "--stop" ]; then
    stop
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    say "not root: no cluster started (run it as root in a container or VM)"
    exit 0
fi

t0=$(date +%s.%N)
if ! command -v sbatch >/dev/null || ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    if ! command -v apt-get >/dev/null; then
        say "no apt-get and no Slurm installed: no cluster started"
        exit 0
    fi
    say "installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q slurm-wlm munge >/dev/null \
        || { apt-get update -q >/dev/null && apt-get install -y -q slurm-wlm munge >/dev/null; }
fi

host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)  # leave the system a tenth

# munge: the key the package made (or a new one), its own user, its socket in /run/munge.
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
mkdir -p "$PIDS" "$STATE" "$SPOOL" "$LOGS" "$CONF_DIR"

if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    say "$CONF exists and was not written by this script; using it as it is"
else
    old=$(cat "$CONF" 2>/dev/null || true)
    cat > "$CONF" <<EOF
$MARK
ClusterName=ci
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL
SlurmctldPidFile=$PIDS/slurmctld.pid
SlurmdPidFile=$PIDS/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
KillWait=2
InactiveLimit=0
MaxArraySize=1001
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    if [ -n "$old" ] && [ "$old" != "$(cat "$CONF")" ] && [ -f "$PIDS/slurmctld.pid" ] \
            && kill -0 "$(cat "$PIDS/slurmctld.pid")" 2>/dev/null; then
        scontrol reconfigure && say "$CONF changed: the running daemons reread it"
    fi
fi

started=0
if ! { [ -f "$PIDS/munged.pid" ] && kill -0 "$(cat "$PIDS/munged.pid")" 2>/dev/null; }; then
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    cp /run/munge/munged.pid "$PIDS/munged.pid"
    started=1
fi
munge -n | unmunge >/dev/null || { say "munge does not work"; exit 1; }
if ! { [ -f "$PIDS/slurmctld.pid" ] && kill -0 "$(cat "$PIDS/slurmctld.pid")" 2>/dev/null; }; then
    slurmctld -i
    started=1
fi
if ! { [ -f "$PIDS/slurmd.pid" ] && kill -0 "$(cat "$PIDS/slurmd.pid")" 2>/dev/null; }; then
    slurmd
    started=1
fi

# Poll until the node takes jobs (seconds; give up after a minute).
for _ in $(seq 600); do
    state=$(sinfo -h -N -o %T 2>/dev/null | head -1 || true)
    case "$state" in idle|mixed|allocated) break ;; esac
    sleep 0.1
done
case "${state:-}" in
    idle|mixed|allocated) ;;
    *) say "the node is not up (state: ${state:-none}); see $LOGS/"; exit 1 ;;
esac
t1=$(date +%s.%N)
say "$( [ $started = 1 ] && echo started || echo already running ): one node ($host, $cpus CPUs, $mem_mb MB), partition debug, $(sinfo -V) in $(awk "BEGIN {printf \"%.1f\", $t1 - $t0}") s"
say "logs in $LOGS/; stop it with: bash $0 --stop"
