#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for lenshunt's SLURM tests and for trying the batch
# templates: munge + slurmctld + slurmd, started directly (no systemd), node address 127.0.0.1.
#
# Usage:
#   scripts/slurm-localhost.sh [start]   write /etc/slurm/slurm.conf, start what is not running,
#                                        wait until the node is idle (idempotent)
#   scripts/slurm-localhost.sh status    daemons, sinfo and squeue; exit 1 when not usable
#   scripts/slurm-localhost.sh stop      cancel this partition's jobs, stop slurmd, slurmctld, munged
#   scripts/slurm-localhost.sh restart   stop, then start
#
# Installs nothing: run scripts/install-slurm.sh first (apt-get install slurm-wlm munge).
# Runs as root (re-executes itself with sudo when it can). The node's CPUs and memory come from
# `slurmd -C`. The partition is named $LENSHUNT_SLURM_PARTITION (default "local") and is the
# default one, so jobs need no -p. An existing slurm.conf not written by this script is left
# alone unless LENSHUNT_SLURM_FORCE=1 (it is then kept as slurm.conf.lenshunt-backup).
set -euo pipefail

ACTION=${1:-start}
CONF_DIR=/etc/slurm
CONF=${CONF_DIR}/slurm.conf
MARKER="# written by lenshunt scripts/slurm-localhost.sh"
PARTITION=${LENSHUNT_SLURM_PARTITION:-local}
RUN_DIR=/run/slurm
CTLD_PID=${RUN_DIR}/slurmctld.pid
SLURMD_PID=${RUN_DIR}/slurmd.pid
MUNGE_PID=/run/munge/munged.pid
LOG_DIR=/var/log/slurm
WAIT_S=${LENSHUNT_SLURM_WAIT_S:-60}

log() { echo "slurm-localhost: $*"; }
die() { echo "slurm-localhost: error: $*" >&2; exit 1; }

if [[ ${EUID} -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -E "$0" "$@"
    fi
    die "must run as root (the daemons need it); sudo is not available"
fi

alive() {  # alive PIDFILE: the process named in PIDFILE is running
    [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

stop_pidfile() {  # stop_pidfile NAME PIDFILE: SIGTERM, wait up to 15 s, then SIGKILL
    local name=$1 pidfile=$2 pid
    if ! alive "$pidfile"; then
        return 0
    fi
    pid=$(cat "$pidfile")
    log "stopping ${name} (pid ${pid})"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
        sleep 0.1
    done
    log "${name} ignored SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

require_binaries() {
    local missing=()
    for binary in munged munge unmunge slurmctld slurmd sinfo scontrol sbatch; do
        command -v "$binary" >/dev/null 2>&1 || [[ -x /usr/sbin/${binary} ]] || missing+=("$binary")
    done
    if ((${#missing[@]})); then
        die "missing ${missing[*]}: install SLURM and munge first (scripts/install-slurm.sh)"
    fi
}

munge_works() {
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1
}

start_munge() {
    if munge_works; then
        log "munged already running"
        return 0
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 0755 /run/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 1 50); do
        munge_works && return 0
        sleep 0.1
    done
    die "munged did not come up; see /var/log/munge/munged.log"
}

render_conf() {  # the slurm.conf for this machine, on stdout
    local host node_line
    host=$(hostname -s)
    # `slurmd -C` prints e.g. "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2
    # ThreadsPerCore=1 RealMemory=24105" (and an UpTime line, dropped).
    node_line=$(slurmd -C | grep '^NodeName=' | head -n1)
    [[ -n $node_line ]] || die "slurmd -C printed no NodeName line"
    cat <<EOF
${MARKER}; rerun it to regenerate. Single node, loopback only, no systemd, no cgroups.
ClusterName=lenshunt-local
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=${CTLD_PID}
SlurmdPidFile=${SLURMD_PID}
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Jobs that give no --mem get this much per CPU (otherwise one job would take all the memory).
DefMemPerCPU=1024
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
# One line per finished job (JobId, JobState, ExitCode, ...): handy without accounting.
JobCompType=jobcomp/filetxt
JobCompLoc=${LOG_DIR}/jobcomp.log
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
SchedulerType=sched/backfill
${node_line} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=${PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

write_conf() {  # write_conf: returns 0 when the file changed, 1 when it was already current
    local new
    new=$(render_conf)
    mkdir -p "$CONF_DIR"
    if [[ -f $CONF ]] && ! grep -qF "$MARKER" "$CONF"; then
        if [[ ${LENSHUNT_SLURM_FORCE:-0} != 1 ]]; then
            die "${CONF} exists and was not written by this script; set LENSHUNT_SLURM_FORCE=1 to replace it"
        fi
        cp -p "$CONF" "${CONF}.lenshunt-backup"
        log "kept the previous ${CONF} as ${CONF}.lenshunt-backup"
    fi
    if [[ -f $CONF ]] && [[ $(cat "$CONF") == "$new" ]]; then
        return 1
    fi
    printf '%s\n' "$new" >"$CONF"
    log "wrote ${CONF}"
    return 0
}

node_state() {
    sinfo -h -N -n "$(hostname -s)" -o '%t' 2>/dev/null | head -n1 || true
}

wait_node_ready() {
    local state=""
    for _ in $(seq 1 $((WAIT_S * 2))); do
        state=$(node_state)
        case $state in
            idle | mix | alloc | comp) log "node $(hostname -s) is ${state}"; return 0 ;;
            drain* | drng | down* | fail*)
                scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 0.5
    done
    die "node not ready after ${WAIT_S}s (state '${state}'); see ${LOG_DIR}/slurmctld.log and slurmd.log"
}

start() {
    require_binaries
    start_munge
    mkdir -p /var/spool/slurmctld /var/spool/slurmd "$LOG_DIR" "$RUN_DIR"
    local changed=0
    write_conf && changed=1
    if ((changed)) && { alive "$CTLD_PID" || alive "$SLURMD_PID"; }; then
        log "configuration changed: restarting the daemons"
        stop_pidfile slurmd "$SLURMD_PID"
        stop_pidfile slurmctld "$CTLD_PID"
    fi
    if alive "$CTLD_PID"; then
        log "slurmctld already running (pid $(cat "$CTLD_PID"))"
    else
        log "starting slurmctld"
        /usr/sbin/slurmctld
    fi
    for _ in $(seq 1 $((WAIT_S * 2))); do
        scontrol ping 2>/dev/null | grep -q 'is UP' && break
        sleep 0.5
    done
    scontrol ping 2>/dev/null | grep -q 'is UP' || die "slurmctld is not answering; see ${LOG_DIR}/slurmctld.log"
    if alive "$SLURMD_PID"; then
        log "slurmd already running (pid $(cat "$SLURMD_PID"))"
    else
        log "starting slurmd"
        /usr/sbin/slurmd
    fi
    wait_node_ready
    sinfo
}

stop() {
    if alive "$CTLD_PID"; then
        scancel --quiet --partition="$PARTITION" 2>/dev/null || true
        for _ in $(seq 1 50); do
            [[ -z $(squeue -h -p "$PARTITION" 2>/dev/null) ]] && break
            sleep 0.2
        done
    fi
    stop_pidfile slurmd "$SLURMD_PID"
    stop_pidfile slurmctld "$CTLD_PID"
    if [[ -s $MUNGE_PID ]] && alive "$MUNGE_PID"; then
        log "stopping munged"
        runuser -u munge -- /usr/sbin/munged --stop >/dev/null 2>&1 || stop_pidfile munged "$MUNGE_PID"
    fi
    log "stopped"
}

status() {
    local ok=0
    if munge_works; then log "munged: running"; else log "munged: not running"; ok=1; fi
    if alive "$CTLD_PID"; then log "slurmctld: running (pid $(cat "$CTLD_PID"))"; else log "slurmctld: not running"; ok=1; fi
    if alive "$SLURMD_PID"; then log "slurmd: running (pid $(cat "$SLURMD_PID"))"; else log "slurmd: not running"; ok=1; fi
    if ((ok == 0)); then
        sinfo
        squeue
    fi
    return "$ok"
}

case $ACTION in
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    status) status ;;
    *) die "unknown action '${ACTION}' (use start, stop, restart or status)" ;;
esac
