#!/usr/bin/env bash
# A real single-node SLURM on this machine, for the tests of cluster execution (tests/test_slurm.py)
# and for trying `make reproduce ARGS="--profile profiles/slurm-localhost"`.
#
#   bash scripts/slurm_localhost.sh start    install slurm-wlm + munge when missing (apt-get; root or
#                                            passwordless sudo), start munged, slurmctld and slurmd, wait
#                                            until the node is idle and `srun -N1 true` works
#   bash scripts/slurm_localhost.sh stop     stop slurmd and slurmctld (and munged, if this script started it)
#   bash scripts/slurm_localhost.sh status   exit 0 when the daemons run and the node answers
#
# Exit status: 0 done; 3 this machine cannot have SLURM (neither root nor passwordless sudo, or slurm-wlm/munge
# missing and apt-get cannot install them); 1 anything else (the message names it).
#
# `start` when SLURM already runs only checks it. The configuration goes to /etc/slurm/slurm.conf (the default
# path: `srun` inside a job does not see a SLURM_CONF set elsewhere); a slurm.conf this script did not write is
# never overwritten. State, spool, pid and log files live under $RR_SLURM_DIR (default /var/tmp/rr-slurm).
# Messages go to stderr.
#
# Environment: RR_SLURM_DIR, RR_SLURM_TIMEOUT (seconds to wait for the node, default 60),
# RR_SLURM_MEM_MARGIN_MB (memory left to the system, default max(1024, 10% of MemTotal)).
set -euo pipefail

ACTION="${1:-}"
DIR="${RR_SLURM_DIR:-/var/tmp/rr-slurm}"
CONF=/etc/slurm/slurm.conf
MARK="# written by scripts/slurm_localhost.sh (rr-relevance)"
TIMEOUT="${RR_SLURM_TIMEOUT:-60}"
NODE="$(hostname -s)"

say() { echo "slurm_localhost: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }
cannot() { say "CANNOT: $*"; exit 3; }  # exit 3: this machine cannot have SLURM (no root, no apt-get)

alive() {  # alive PIDFILE: the process of the pid file runs
    local pid
    [ -r "$1" ] || return 1
    pid="$(cat "$1" 2>/dev/null)" || return 1
    [ -n "$pid" ] && [ -d "/proc/$pid" ]
}

node_state() { sinfo -h -N -n "$NODE" -o %t 2>/dev/null | head -n1; }

privileges() {  # sets SUDO, or exits naming the problem
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=""
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        cannot "starting SLURM needs root or passwordless sudo (user $(id -un) has neither)"
    fi
}

install_packages() {
    local missing=()
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v srun >/dev/null \
        || missing+=(slurm-wlm)
    command -v munged >/dev/null || missing+=(munge)
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || cannot "${missing[*]} missing and there is no apt-get to install them"
    say "installing ${missing[*]} with apt-get"
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge)
    if ! $SUDO "${apt[@]}" >/dev/null 2>&1; then
        say "apt-get install failed; running apt-get update first"
        $SUDO apt-get update -qq >/dev/null || cannot "apt-get update failed (no network or no package mirror?)"
        $SUDO "${apt[@]}" >/dev/null || cannot "apt-get install slurm-wlm munge failed"
    fi
    command -v slurmctld >/dev/null && command -v munged >/dev/null || die "slurm-wlm/munge installed, yet slurmctld or munged is not on PATH"
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        say "munged runs"
        return 0
    fi
    if [ ! -s /etc/munge/munge.key ]; then
        say "creating /etc/munge/munge.key"
        $SUDO mkdir -p /etc/munge
        $SUDO sh -c 'dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null'
        $SUDO chown munge:munge /etc/munge/munge.key
        $SUDO chmod 400 /etc/munge/munge.key
    fi
    $SUDO mkdir -p /run/munge /var/log/munge /var/lib/munge
    $SUDO chown munge:munge /run/munge /var/log/munge /var/lib/munge
    $SUDO chmod 755 /run/munge
    say "starting munged as user munge"
    $SUDO runuser -u munge -- munged || die "munged did not start (see /var/log/munge/munged.log)"
    $SUDO touch "$DIR/munged.started-here"
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "munged started but munge -n | unmunge fails (see /var/log/munge/munged.log)"
}

write_conf() {
    local cpus mem_kb mem_mb margin real
    cpus="$(nproc)"
    mem_kb="$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
    mem_mb=$((mem_kb / 1024))
    margin="${RR_SLURM_MEM_MARGIN_MB:-$(( mem_mb / 10 > 1024 ? mem_mb / 10 : 1024 ))}"
    real=$((mem_mb - margin))
    [ "$real" -ge 512 ] || die "too little memory for a SLURM node: ${mem_mb} MB total, margin ${margin} MB"
    if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script; move it away to use the test cluster"
    fi
    local text
    text="$MARK
ClusterName=local
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AuthType=auth/munge
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmctldPort=16817
SlurmdPort=16818
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# squeue reports finished jobs for MinJobAge seconds (the executor's status checks need that; no sacct here)
MinJobAge=300
# scancel: SIGTERM, then SIGKILL after KillWait seconds
KillWait=5
InactiveLimit=0
NodeName=$NODE CPUs=$cpus RealMemory=$real State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP"
    if [ -e "$CONF" ] && [ "$(cat "$CONF")" = "$text" ]; then
        return 0
    fi
    say "writing $CONF (node $NODE: CPUs=$cpus RealMemory=${real} MB; state under $DIR)"
    $SUDO mkdir -p /etc/slurm
    printf '%s\n' "$text" | $SUDO tee "$CONF" >/dev/null
}

wait_idle() {
    local t0 state
    t0=$(date +%s)
    while :; do
        state="$(node_state || true)"
        case "$state" in
            idle|mix|alloc) return 0 ;;
            down*|drain*|fail*)
                say "node $NODE is $state; resuming it"
                $SUDO scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true ;;
        esac
        if [ $(( $(date +%s) - t0 )) -ge "$TIMEOUT" ]; then
            die "node $NODE not idle after ${TIMEOUT} s (state '${state:-none}'); see $DIR/log/slurmctld.log and $DIR/log/slurmd.log"
        fi
        sleep 0.5
    done
}

check_srun() {
    timeout "$TIMEOUT" srun -N1 -n1 true >/dev/null 2>"$DIR/srun.err" \
        || die "srun -N1 true failed: $(tr '\n' ' ' <"$DIR/srun.err")"
}

stop_pidfile() {  # stop_pidfile NAME PIDFILE
    local pid
    if ! alive "$2"; then
        say "$1 is not running"
        return 0
    fi
    pid="$(cat "$2")"
    say "stopping $1 (pid $pid)"
    $SUDO kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        [ -d "/proc/$pid" ] || return 0
        sleep 0.1
    done
    say "$1 (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
    $SUDO kill -KILL "$pid" 2>/dev/null || true
}

running() { alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid"; }

case "$ACTION" in
    start)
        if running && command -v sinfo >/dev/null; then
            say "slurmctld and slurmd already run; checking them"
            wait_idle
            check_srun
            say "SLURM on $NODE: node $(node_state), srun works"
            exit 0
        fi
        privileges
        install_packages
        $SUDO mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
        start_munge
        write_conf
        if ! alive "$DIR/slurmctld.pid"; then
            say "starting slurmctld"
            $SUDO slurmctld || die "slurmctld did not start; see $DIR/log/slurmctld.log"
        fi
        if ! alive "$DIR/slurmd.pid"; then
            say "starting slurmd"
            $SUDO slurmd || die "slurmd did not start; see $DIR/log/slurmd.log"
        fi
        wait_idle
        check_srun
        say "SLURM on $NODE is up: partition debug, node $(node_state), srun works"
        ;;
    stop)
        if alive "$DIR/slurmd.pid" || alive "$DIR/slurmctld.pid" || [ -e "$DIR/munged.started-here" ]; then
            privileges
        fi
        stop_pidfile slurmd "$DIR/slurmd.pid"
        stop_pidfile slurmctld "$DIR/slurmctld.pid"
        if [ -e "$DIR/munged.started-here" ]; then
            stop_pidfile munged /run/munge/munged.pid
            $SUDO rm -f "$DIR/munged.started-here"
        fi
        ;;
    status)
        if running && command -v sinfo >/dev/null && state="$(node_state)" && [ -n "$state" ]; then
            say "SLURM runs: slurmctld pid $(cat "$DIR/slurmctld.pid"), slurmd pid $(cat "$DIR/slurmd.pid"), node $NODE $state"
            sinfo >&2 || true
            exit 0
        fi
        say "SLURM is not running (no live slurmctld/slurmd under $DIR or no node answers)"
        exit 1
        ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
