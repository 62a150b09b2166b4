#!/usr/bin/env bash
# A throwaway single-node SLURM cluster on localhost, for tests/integration/test_slurm.py.
#
#   local_slurm.sh install          apt-get the Debian packages (CI calls this first)
#   local_slurm.sh start            install if needed, write configs, start the daemons, wait
#                                   until a GPU job can run and sacct sees it
#   local_slurm.sh stop [--purge]   cancel our jobs, stop every daemon we started (by PID file,
#                                   checking the process name), --purge deletes all state and
#                                   the config files this script wrote
#   local_slurm.sh pids             "name pid" of every daemon we started and that is alive
#   local_slurm.sh status           sinfo + pids
#
# Daemons: munged (unless a munged already answers), mariadbd + slurmdbd (so `sacct` works),
# slurmctld, slurmd. No systemd needed: each daemon is started directly and writes a PID file
# under $LOCAL_SLURM_BASE/run. Must run as root on Debian 12 (Slurm 22.05). Idempotent: a second
# `start` leaves running daemons alone.
#
# The node pretends to be a GPU node: fake GPUs are declared as GRES backed by character
# devices (mknod c 1 3, i.e. /dev/null) so `--gpus=1` jobs schedule and get
# CUDA_VISIBLE_DEVICES; `SlurmdParameters=config_overrides` makes slurmd accept the declared
# CPUs/memory (sized for 8B-model requests) instead of what the machine really has. Nothing is
# enforced (no cgroups), so jobs simply share the real cores.
#
# Knobs (environment):
#   LOCAL_SLURM_BASE      state, logs, PID files, MariaDB datadir   (/tmp/parammem-slurm)
#   LOCAL_SLURM_GPUS      number of fake GPUs                       (4)
#   LOCAL_SLURM_GPU_TYPE  GRES type, what `gpu_model` must name     (testgpu)
#   LOCAL_SLURM_CPUS      declared CPUs of the node                 (64)
#   LOCAL_SLURM_MEM_MB    declared RealMemory of the node           (524288)
#   LOCAL_SLURM_ACCOUNT   account created for root (default account) (parammem)
#   LOCAL_SLURM_DB_PORT   MariaDB TCP port on 127.0.0.1             (3316)
#   LOCAL_SLURM_SMOKE     1: submit one GPU job at the end of start (1)
#
# Why /etc/slurm and not SLURM_CONF=<base>/slurm.conf: the slurm-jobstep executor strips all
# SLURM_* variables before its nested `srun`, so jobs only work with the default config path.
# The script refuses to overwrite an /etc/slurm/slurm.conf it did not write.
#
# Partitions: `main` (default), `cpu` and `gpu`, all on the one node, so a test can check that
# the profile's slurm_partition knob (not the cluster default) decided where a job ran.
set -euo pipefail
exec </dev/null

BASE=${LOCAL_SLURM_BASE:-/tmp/parammem-slurm}
GPUS=${LOCAL_SLURM_GPUS:-4}
GPU_TYPE=${LOCAL_SLURM_GPU_TYPE:-testgpu}
NODE_CPUS=${LOCAL_SLURM_CPUS:-64}
NODE_MEM=${LOCAL_SLURM_MEM_MB:-524288}
ACCOUNT=${LOCAL_SLURM_ACCOUNT:-parammem}
DB_PORT=${LOCAL_SLURM_DB_PORT:-3316}
SMOKE=${LOCAL_SLURM_SMOKE:-1}
CLUSTER=parammemci
ETC=/etc/slurm
RUN=$BASE/run
LOG=$BASE/log
MARK="# written by parammem tests/integration/local_slurm.sh; base=$BASE"
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server mariadb-client)

say() { printf '[local_slurm %s] %s\n' "$(date +%T)" "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

# ------------------------------------------------------------------ helpers
# running PIDFILE NAME: the PID in PIDFILE is alive and is the process NAME
running() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(tr -dc 0-9 <"$1")
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

# halt PIDFILE NAME: SIGTERM, wait up to 30 s, then SIGKILL; only if the PID really is NAME
halt() {
  if running "$1" "$2"; then
    local pid i
    pid=$(tr -dc 0-9 <"$1")
    say "stopping $2 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 60); do [ -d "/proc/$pid" ] || break; sleep 0.5; done
    if [ -d "/proc/$pid" ]; then say "$2 ignored SIGTERM, sending SIGKILL"; kill -KILL "$pid" || true; fi
  fi
  rm -f "$1"
}

# until SECONDS WHAT CMD...: retry CMD every 0.5 s
until_ok() {
  local secs=$1 what=$2 i
  shift 2
  for i in $(seq $((secs * 2))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  fail "gave up after ${secs}s waiting for $what (logs: $LOG)"
}

# put_file DEST MODE < content: write only if different; status 0 when the file changed
put_file() {
  local tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 1; fi
  install -D -m "$2" "$tmp" "$1"
  rm -f "$tmp"
}

# ours FILE: FILE does not exist or was written by this script for this base
ours() { [ ! -e "$1" ] || grep -qxF "$MARK" "$1"; }

# ------------------------------------------------------------------ install
do_install() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi
  say "apt-get install ${missing[*]}"
  # Package maintainer scripts would start mariadb/munge/slurm as system services (and fail or
  # squat the ports). A policy-rc.d that exits 101 forbids that; remove it only if we made it.
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# temporary, from local_slurm.sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local rc=0
  (
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
  ) >"${TMPDIR:-/tmp}/local_slurm-apt.log" 2>&1 || rc=$?
  if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  if [ "$rc" != 0 ]; then
    tail -n 30 "${TMPDIR:-/tmp}/local_slurm-apt.log" >&2
    fail "apt-get install failed (rc=$rc)"
  fi
}

# ------------------------------------------------------------------ start
start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    say "creating /etc/munge/munge.key"
    install -d -m 700 -o munge -g munge /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge /etc/munge/munge.key
  chmod 700 /etc/munge
  chmod 400 /etc/munge/munge.key
  install -d -m 755 -o munge -g munge /run/munge "$RUN/munge"
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    if ! running "$RUN/munge/munged.pid" munged; then say "reusing the munged that already answers"; fi
    return 0
  fi
  say "starting munged"
  rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  runuser -u munge -- /usr/sbin/munged --pid-file="$RUN/munge/munged.pid" \
    --log-file="$RUN/munge/munged.log"
  until_ok 20 munged sh -c 'munge -n | unmunge'
}

write_slurm_conf() {
  # returns 0 when slurm.conf or gres.conf changed (daemons must restart)
  local changed=1 files="" i dev
  install -d -m 755 "$BASE/fakegpu"
  for i in $(seq 0 $((GPUS - 1))); do
    dev=$BASE/fakegpu/nvidia$i
    [ -c "$dev" ] && continue
    rm -f "$dev"
    # without CAP_MKNOD (some containers) a symlink to /dev/null is a character device too
    if [ "${LOCAL_SLURM_NO_MKNOD:-0}" = 1 ] || ! mknod -m 666 "$dev" c 1 3 2>/dev/null; then
      ln -s /dev/null "$dev"
    fi
  done
  if [ "$GPUS" = 1 ]; then files=$BASE/fakegpu/nvidia0; else files="$BASE/fakegpu/nvidia[0-$((GPUS - 1))]"; fi

  put_file "$ETC/slurm.conf" 644 <<EOF && changed=0
$MARK
ClusterName=$CLUSTER
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# no cgroups in CI containers: track processes by parent PID, enforce nothing
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# accept the declared (GPU-node sized) CPUs and memory instead of the real ones
SlurmdParameters=config_overrides
ReturnToService=2
MailProg=/bin/true
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# records what every task (batch and srun steps) saw: job, step, CUDA_VISIBLE_DEVICES
TaskProlog=$BASE/task_prolog.sh
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without a default, a job with no --mem takes the whole node and jobs run one at a time
DefMemPerCPU=1000
MinJobAge=300
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStorageTRES=gres/gpu,gres/gpu:$GPU_TYPE
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
GresTypes=gpu
NodeName=$(hostname -s) NodeAddr=127.0.0.1 CPUs=$NODE_CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$NODE_CPUS ThreadsPerCore=1 RealMemory=$NODE_MEM Gres=gpu:$GPU_TYPE:$GPUS State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=cpu Nodes=ALL Default=NO MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=ALL Default=NO MaxTime=INFINITE State=UP
EOF
  put_file "$ETC/gres.conf" 644 <<EOF && changed=0
$MARK
AutoDetect=off
NodeName=$(hostname -s) Name=gpu Type=$GPU_TYPE File=$files
EOF
  put_file "$BASE/task_prolog.sh" 755 <<EOF || true
#!/bin/sh
echo "job=\$SLURM_JOB_ID step=\${SLURM_STEP_ID:-batch} cuda=\${CUDA_VISIBLE_DEVICES:-none} gpus=\${SLURM_JOB_GPUS:-none}" >>"$LOG/tasks.log"
EOF
  return $changed
}

start_db() {
  local db=$BASE/mysql
  install -d -m 755 -o mysql -g mysql "$db" "$RUN/mysqld"
  touch "$LOG/mariadb.log"
  chown mysql:mysql "$LOG/mariadb.log"
  put_file "$BASE/my.cnf" 644 <<EOF || true
[mysqld]
user=mysql
datadir=$db
socket=$RUN/mysqld/mysqld.sock
pid-file=$RUN/mysqld/mysqld.pid
log-error=$LOG/mariadb.log
bind-address=127.0.0.1
port=$DB_PORT
innodb_buffer_pool_size=64M
innodb_log_file_size=48M
innodb_lock_wait_timeout=900
skip-name-resolve
EOF
  if [ ! -d "$db/mysql" ]; then
    say "initialising the MariaDB datadir"
    mariadb-install-db --defaults-file="$BASE/my.cnf" --user=mysql --skip-test-db \
      --auth-root-authentication-method=socket >"$LOG/mariadb-install.log" 2>&1 ||
      { tail -n 20 "$LOG/mariadb-install.log" >&2; fail "mariadb-install-db failed"; }
  fi
  if ! running "$RUN/mysqld/mysqld.pid" mariadbd; then
    say "starting mariadbd on 127.0.0.1:$DB_PORT"
    setsid /usr/sbin/mariadbd --defaults-file="$BASE/my.cnf" >>"$LOG/mariadbd.out" 2>&1 &
    until_ok 60 mariadbd mariadb-admin --socket="$RUN/mysqld/mysqld.sock" ping
    until_ok 10 "mariadbd pid file" test -s "$RUN/mysqld/mysqld.pid"
  fi
  mariadb --socket="$RUN/mysqld/mysqld.sock" <<'EOF'
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF
  local restart=1
  put_file "$ETC/slurmdbd.conf" 600 <<EOF && restart=0
$MARK
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
DebugLevel=info
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
  if [ "$restart" = 0 ]; then halt "$RUN/slurmdbd.pid" slurmdbd; fi
  if ! running "$RUN/slurmdbd.pid" slurmdbd; then
    say "starting slurmdbd"
    /usr/sbin/slurmdbd
    until_ok 60 slurmdbd sacctmgr -n list cluster
    until_ok 10 "slurmdbd pid file" running "$RUN/slurmdbd.pid" slurmdbd
  fi
}

node_ready() { sinfo -h -N -n "$(hostname -s)" -o %T | grep -Eqx 'idle|mixed|allocated'; }

start_slurm() {
  local changed=$1 i
  if [ "$changed" = 0 ]; then
    halt "$RUN/slurmd.pid" slurmd
    halt "$RUN/slurmctld.pid" slurmctld
  fi
  if ! running "$RUN/slurmctld.pid" slurmctld; then
    say "starting slurmctld"
    /usr/sbin/slurmctld
    until_ok 60 slurmctld scontrol ping
  fi
  if ! running "$RUN/slurmd.pid" slurmd; then
    say "starting slurmd"
    /usr/sbin/slurmd
  fi
  for i in $(seq 60); do
    node_ready && break
    # a node left DOWN/DRAIN/INVAL by an earlier config comes back once it registered
    if sinfo -h -N -n "$(hostname -s)" -o %T | grep -Eq 'down|drain|inval'; then
      scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
    fi
    sleep 1
  done
  node_ready || { sinfo -R >&2; fail "node $(hostname -s) is not usable (see $LOG/slurmd.log)"; }
  until_ok 10 "slurmctld/slurmd pid files" sh -c "test -s '$RUN/slurmctld.pid' && test -s '$RUN/slurmd.pid'"
}

setup_accounts() {
  # slurmctld registers the cluster in slurmdbd on its first contact
  until_ok 60 "cluster $CLUSTER in slurmdbd" sh -c "sacctmgr -n -P list cluster format=cluster | grep -qx $CLUSTER"
  if ! sacctmgr -n -P list account "$ACCOUNT" format=account | grep -qx "$ACCOUNT"; then
    say "creating account $ACCOUNT (default account of root)"
    sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description=tests organization=parammem >/dev/null
  fi
  if ! sacctmgr -n -P list assoc user=root account="$ACCOUNT" format=account | grep -qx "$ACCOUNT"; then
    sacctmgr -i add user root account="$ACCOUNT" defaultaccount="$ACCOUNT" cluster="$CLUSTER" >/dev/null
  fi
}

smoke_job() {
  local dir jid
  dir=$(mktemp -d "$BASE/smoke.XXXXXX")
  jid=$(sbatch --parsable -D "$dir" -o "$dir/out" -p gpu -A "$ACCOUNT" -t 1 --mem=100 \
    --gpus="$GPU_TYPE:1" --wrap 'echo "ok cuda=${CUDA_VISIBLE_DEVICES:-none}"')
  until_ok 60 "smoke job $jid" sh -c "sacct -n -X -P -j $jid -o State | grep -qx COMPLETED"
  grep -q '^ok cuda=[0-9]' "$dir/out" || fail "smoke job $jid printed: $(cat "$dir/out")"
  say "smoke job $jid: $(cat "$dir/out"); sacct: $(sacct -n -X -P -j "$jid" -o Partition,Account,State,AllocTRES)"
  rm -rf "$dir"
}

do_start() {
  [ "$(id -u)" = 0 ] || fail "must run as root"
  do_install
  install -d -m 755 "$BASE" "$RUN" "$LOG" "$BASE/state" "$BASE/spool" "$ETC"
  local f other
  for f in slurm.conf gres.conf slurmdbd.conf; do
    ours "$ETC/$f" && continue
    grep -q '^# written by parammem tests/integration/local_slurm.sh' "$ETC/$f" ||
      fail "$ETC/$f exists and was not written by this script; refusing to overwrite a real cluster's config"
    # written for another base: take it over only if that cluster's daemons are all gone
    other=$(sed -n 's/^# written by parammem .*; base=//p' "$ETC/$f" | head -1)
    if [ -n "$(LOCAL_SLURM_BASE=$other bash "$0" pids)" ]; then
      fail "another local cluster runs from $other; stop it first: LOCAL_SLURM_BASE=$other bash $0 stop --purge"
    fi
    say "taking over $ETC/$f from the stopped cluster at $other"
  done
  say "slurm $(dpkg-query -W -f='${Version}' slurmctld), base $BASE"
  start_munge
  local changed=1
  write_slurm_conf && changed=0
  start_db
  start_slurm "$changed"
  setup_accounts
  if [ "$SMOKE" = 1 ]; then smoke_job; fi
  sinfo -o '%P %a %T %N %c %m %G' >&2
  say "up: $(do_pids | tr '\n' ' ')"
}

# ------------------------------------------------------------------ stop / pids
DAEMONS=("slurmd:$RUN/slurmd.pid" "slurmctld:$RUN/slurmctld.pid" "slurmdbd:$RUN/slurmdbd.pid"
  "mariadbd:$RUN/mysqld/mysqld.pid" "munged:$RUN/munge/munged.pid")

do_pids() {
  local d
  for d in "${DAEMONS[@]}"; do
    if running "${d#*:}" "${d%%:*}"; then echo "${d%%:*} $(tr -dc 0-9 <"${d#*:}")"; fi
  done
}

do_stop() {
  if running "$RUN/slurmctld.pid" slurmctld; then
    local jobs
    jobs=$(timeout 10 squeue -h -o %i 2>/dev/null | tr '\n' ' ' || true)
    if [ -n "${jobs// /}" ]; then
      say "cancelling jobs $jobs"
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      sleep 2
    fi
  fi
  local d
  for d in "${DAEMONS[@]}"; do halt "${d#*:}" "${d%%:*}"; done
  if [ "${1:-}" = --purge ]; then
    for f in slurm.conf gres.conf slurmdbd.conf; do
      if [ -e "$ETC/$f" ] && ours "$ETC/$f"; then rm -f "$ETC/$f"; fi
    done
    case "$BASE" in /tmp/?* | /var/tmp/?*) say "removing $BASE"; rm -rf "$BASE" ;;
      *) say "not removing $BASE (only paths under /tmp or /var/tmp are purged)" ;; esac
  fi
  say "stopped"
}

case "${1:-}" in
  install) [ "$(id -u)" = 0 ] || fail "must run as root"; do_install ;;
  start) do_start ;;
  stop) shift; do_stop "${1:-}" ;;
  pids) do_pids ;;
  status) sinfo -o '%P %a %T %N %c %m %G' || true; do_pids ;;
  *) echo "usage: $0 install|start|stop [--purge]|pids|status" >&2; exit 2 ;;
esac
