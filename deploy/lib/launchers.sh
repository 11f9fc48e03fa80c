# lenshunt: the worker-launcher checks shared by deploy/slurm/lenshunt-run.sbatch and
# deploy/pbs/lenshunt-run.pbs (sourced by both; they define `log` and LENSHUNT_WORKER_KIND).
#
# The batch system runs a copy of the job script from its spool directory, so the scripts find this
# file through the lenshunt their interpreter imports, not beside $0.
# shellcheck shell=bash

# require_launcher COMMAND WHAT ADVICE: exit 1 now, naming COMMAND (WHAT it is), when it is not on PATH.
require_launcher() {
    local command=$1 what=$2 advice=$3
    if ! command -v "$command" >/dev/null 2>&1; then
        log "${command}, ${what}, is not on PATH (${PATH}): ${advice}"
        exit 1
    fi
}

# watch_launchers WAITER_PID WANTED LOG_GLOB LABEL=PID...: wait for WAITER_PID (the process waiting
# for WANTED workers to join) while watching the worker launchers. A launcher that exits first has
# failed (trial: `dask cuda worker` without dask-cuda died at once, "No such command 'cuda'", and the
# job held its nodes for the whole wait): stop waiting, say which launcher exited with what status,
# show the end of the workers' logs (LOG_GLOB) and what a cuda worker needs, and exit 1.
watch_launchers() {
    local waiter=$1 wanted=$2 logs=$3 entry label pid status
    shift 3
    while kill -0 "$waiter" 2>/dev/null; do
        for entry in "$@"; do
            label=${entry%=*}
            pid=${entry##*=}
            kill -0 "$pid" 2>/dev/null && continue
            kill "$waiter" 2>/dev/null || true
            status=0
            wait "$pid" || status=$?
            log "the worker launcher ${label} exited with ${status} before ${wanted} worker(s) joined:"
            # shellcheck disable=SC2086 # LOG_GLOB is a pattern
            tail -n 20 $logs >&2 || true
            if [[ $LENSHUNT_WORKER_KIND == cuda ]]; then
                log "LENSHUNT_WORKER_KIND=cuda (\`dask cuda worker\`) needs dask-cuda and a CUDA GPU on every" \
                    "node: install the extra with \`pip install 'lenshunt[cuda]'\` there, or set LENSHUNT_WORKER_KIND=cpu"
            fi
            exit 1
        done
        sleep 1
    done
    wait "$waiter"
}
