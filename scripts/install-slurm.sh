#!/usr/bin/env bash
# Install Debian's SLURM (slurmctld, slurmd, client commands) and munge, for the single-node test
# cluster that scripts/slurm-localhost.sh starts. Used by CI; safe to run twice.
#
# Usage: scripts/install-slurm.sh          (as root, or with sudo available)
#
# Installs packages only: it starts no daemon and writes no configuration (Debian's package scripts
# try to start services through systemd, which fails harmlessly in containers).
set -euo pipefail

if [[ ${EUID} -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -E "$0" "$@"
    fi
    echo "install-slurm.sh: must run as root (or with sudo)" >&2
    exit 1
fi

if command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 \
    && command -v munged >/dev/null 2>&1 && command -v sbatch >/dev/null 2>&1; then
    echo "install-slurm.sh: slurm-wlm and munge already installed ($(sbatch --version))"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq slurm-wlm munge
echo "install-slurm.sh: installed $(sbatch --version) and $(munged --version 2>&1 | head -n1)"
