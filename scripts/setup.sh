#!/usr/bin/env bash
# Machine setup for moat: Deno, Docker (Debian's docker.io), gVisor's runsc
# registered as a Docker runtime, and the local images the tests use:
#   moat-test/busybox:latest  busybox-static, docker import'ed
#   debian:bookworm-slim      docker pull, else debootstrap --variant=minbase
#   moat-test/clients:latest  debootstrap --variant=minbase with ca-certificates,
#                             curl, git, python3-requests and nodejs: real TLS
#                             clients for the tests that run them in the sandbox
#
# Idempotent: a second run changes nothing and only re-checks. Needs root; when
# run as another user it re-runs itself through sudo.
#
# Environment knobs:
#   MOAT_SETUP_REPROBE=1   re-test runsc without the --network=host fallback
#                          even when daemon.json already carries it
#   MOAT_DEBIAN_MIRROR=URL mirror for apt-get download (trixie) and debootstrap
#                          (default http://deb.debian.org/debian)
set -euo pipefail

DENO_VERSION=2.9.6
RUNSC_PATH=/usr/bin/runsc
RUNSC_SUITE=trixie
# Oldest runsc known to work for moat (bookworm's 20221219 breaks GNU ls/stat).
RUNSC_MIN_DATE=20240729
DAEMON_JSON=/etc/docker/daemon.json
DOCKER_SOCK=/var/run/docker.sock
DOCKER_PIDFILE=/var/run/docker.pid
DOCKERD_LOG=/var/log/moat-dockerd.log
BUSYBOX_IMAGE=moat-test/busybox:latest
DEBIAN_IMAGE=debian:bookworm-slim
CLIENTS_IMAGE=moat-test/clients:latest
# Debian's CA bundle and the TLS clients tests run inside the sandbox (debootstrap --include resolves their dependencies).
CLIENTS_PACKAGES=ca-certificates,curl,git,python3,python3-requests,nodejs
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=${MOAT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
IMAGE_LABEL=dev.moat.built-by=setup
NETSTACK_ERR='cannot run with network enabled in root network namespace'
# debian-archive-keyring: the trixie runsc download and debootstrap verify against it (absent on Ubuntu).
# openssl: tests/net/x509_test.ts reads and verifies the certificates of a run's CA with it.
# openssh-server and -client: tests/engine/remote_test.ts reaches the engine through ssh:// to an sshd of its
# own on loopback (never the system's sshd, which is not started here). podman and catatonit (its init):
# tests/engine/podman_test.ts runs a Podman service of its own.
APT_PACKAGES=(docker.io busybox-static debootstrap debian-archive-keyring openssl openssh-server openssh-client
  podman catatonit)

if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 ||
    { echo "setup: must run as root and sudo is not available" >&2; exit 1; }
  echo "setup: not root; re-running through sudo"
  exec sudo -- env "PATH=$PATH" "MOAT_SETUP_REPROBE=${MOAT_SETUP_REPROBE:-}" \
    "MOAT_DEBIAN_MIRROR=$DEBIAN_MIRROR" bash "$(readlink -f "$0")" "$@"
fi

START_SECONDS=$SECONDS
CHANGES=()
NOTES=()
say() { printf 'setup: %s\n' "$*"; }
ok() { printf 'setup: ok: %s\n' "$*"; }
did() { printf 'setup: DID: %s\n' "$*"; CHANGES+=("$*"); }
note() { printf 'setup: NOTE: %s\n' "$*"; NOTES+=("$*"); }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

WORK=$(mktemp -d /tmp/moat-setup.XXXXXX)
chmod 755 "$WORK" # apt's _apt sandbox user must be able to write into it
POLICY_RC_CREATED=
cleanup() {
  if [[ -n $POLICY_RC_CREATED ]]; then rm -f /usr/sbin/policy-rc.d; fi
  # debootstrap may leave proc/sys/dev mounted inside its target when it fails;
  # never recurse into a mount.
  local m
  while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(
    awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r)
  if awk -v w="$WORK/" 'index($2, w) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
    echo "setup: WARNING: mounts remain under $WORK; not removing it" >&2
  else
    rm -rf --one-file-system "$WORK"
  fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- 1. Deno ---
if command -v deno >/dev/null 2>&1; then
  deno_have=$(deno --version | awk 'NR == 1 { print $2 }')
  ok "deno $deno_have already installed ($(command -v deno))"
  [[ $deno_have == "$DENO_VERSION" ]] ||
    note "deno is $deno_have, the project pins $DENO_VERSION (left as is)"
else
  if ! command -v npm >/dev/null 2>&1; then
    # Deno is installed from the npm registry; a bare Debian/Ubuntu has no npm, so take Debian's.
    say "installing npm (apt) to install deno"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm
    did "apt-get installed npm"
  fi
  say "installing deno $DENO_VERSION with npm"
  npm install -g "deno@$DENO_VERSION"
  hash -r
  command -v deno >/dev/null 2>&1 || die "npm installed deno but it is not on PATH ($PATH)"
  did "installed deno $(deno --version | awk 'NR == 1 { print $2 }') via npm ($(command -v deno))"
fi

# ----------------------------------------------------------------- 2. apt ---
pkg_installed() {
  [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]
}
missing=()
for p in "${APT_PACKAGES[@]}"; do pkg_installed "$p" || missing+=("$p"); done
if ((${#missing[@]} == 0)); then
  ok "apt packages already installed: ${APT_PACKAGES[*]}"
else
  say "installing apt packages: ${missing[*]}"
  # No init system here: keep the package scripts from starting dockerd or
  # containerd themselves; dockerd is started below.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    POLICY_RC_CREATED=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  if [[ -n $POLICY_RC_CREATED ]]; then rm -f /usr/sbin/policy-rc.d; POLICY_RC_CREATED=; fi
  did "apt-get installed ${missing[*]}"
fi

# -------------------------------------------------------------- 2b. python3 ---
# tests/engine/pty_helper.py (the terminal the -t tests run moat on) needs python3 with termios and json,
# which Debian ships in libpython3-stdlib: python3-minimal alone lacks them, the python3 package has them.
PY_MODULES='import fcntl, json, termios'
if command -v python3 >/dev/null 2>&1 && python3 -c "$PY_MODULES" 2>/dev/null; then
  ok "python3 already installed with termios and json ($(python3 --version 2>&1), $(command -v python3))"
else
  say "installing python3 (apt) for tests/engine/pty_helper.py"
  DEBIAN_FRONTEND=noninteractive apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3
  hash -r
  python3 -c "$PY_MODULES" ||
    die "apt installed python3 but '$(command -v python3 || echo python3)' cannot import termios and json"
  did "apt-get installed python3 ($(python3 --version 2>&1))"
fi

# --------------------------------------------------------------- 3. runsc ---
# Date part of a runsc version: "runsc version release-20240729.0" (upstream),
# "runsc version 0.0~20240729.0" or package version "0.0~20240729.0-4+b7".
version_date() { grep -oE '20[0-9]{6}' <<<"$1" | head -n1 || true; }

runsc_have_line=
runsc_have_date=
if [[ -x $RUNSC_PATH ]]; then
  runsc_have_line=$("$RUNSC_PATH" --version 2>/dev/null | head -n1 || true)
  runsc_have_date=$(version_date "$runsc_have_line")
fi
runsc_have_pkg=
if pkg_installed runsc; then runsc_have_pkg=$(dpkg-query -W -f='${Version}' runsc); fi

# A throwaway apt setup that only sees $RUNSC_SUITE; the system's apt state,
# lists and cache are untouched.
APT_T=$WORK/apt-$RUNSC_SUITE
APT_T_OPTS=(
  -o "Dir::Etc::SourceList=$APT_T/sources.list"
  -o "Dir::Etc::SourceParts=$APT_T/sources.list.d"
  -o "Dir::Etc::Preferences=$APT_T/preferences"
  -o "Dir::Etc::PreferencesParts=$APT_T/preferences.d"
  -o "Dir::State=$APT_T/state"
  -o "Dir::State::Lists=$APT_T/lists"
  -o "Dir::State::status=$APT_T/status"
  -o "Dir::Cache=$APT_T/cache"
  -o "APT::Get::List-Cleanup=0"
  -o "Acquire::Languages=none"
)
apt_t() { apt-get "${APT_T_OPTS[@]}" "$@"; }
runsc_candidate=
query_runsc_candidate() {
  mkdir -p "$APT_T"/{sources.list.d,preferences.d,state,lists/partial,cache/archives/partial}
  : >"$APT_T/status"
  : >"$APT_T/preferences"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_MIRROR $RUNSC_SUITE main" \
    >"$APT_T/sources.list"
  if ! apt_t update -qq >"$APT_T/update.log" 2>&1; then
    sed 's/^/  apt: /' "$APT_T/update.log" >&2
    return 1
  fi
  runsc_candidate=$(apt-cache "${APT_T_OPTS[@]}" policy runsc | awk '$1 == "Candidate:" { print $2 }')
  [[ -n $runsc_candidate && $runsc_candidate != "(none)" ]]
}

install_runsc_deb() {
  local deb
  (cd "$APT_T" && apt_t download -qq "runsc=$runsc_candidate" >"$APT_T/download.log" 2>&1) ||
    { cat "$APT_T/download.log" >&2; die "apt-get download runsc=$runsc_candidate failed"; }
  deb=$(find "$APT_T" -maxdepth 1 -name 'runsc_*.deb' | head -n1)
  [[ -n $deb ]] || die "apt-get download left no runsc .deb in $APT_T"
  local deps
  deps=$(dpkg-deb -f "$deb" Depends Pre-Depends)
  if [[ -z $deps ]]; then
    dpkg -i "$deb" >/dev/null
    did "installed runsc $runsc_candidate from Debian $RUNSC_SUITE (dpkg -i)"
  else
    # Has dependencies we will not pull from another suite: take the binary only.
    dpkg-deb -x "$deb" "$APT_T/x"
    install -m 0755 "$APT_T/x/usr/bin/runsc" "$RUNSC_PATH"
    did "installed $RUNSC_PATH from runsc $runsc_candidate ($RUNSC_SUITE; binary only, package declares: $deps)"
  fi
}

if query_runsc_candidate; then
  cand_date=$(version_date "$runsc_candidate")
  newer_enough=
  if [[ -n $runsc_have_pkg && -n $runsc_have_line ]] &&
    dpkg -S "$RUNSC_PATH" 2>/dev/null | grep -q '^runsc:'; then
    dpkg --compare-versions "$runsc_have_pkg" ge "$runsc_candidate" && newer_enough=1
  elif [[ -n $runsc_have_date && -n $cand_date ]] && ((runsc_have_date >= cand_date)); then
    newer_enough=1
  fi
  if [[ -n $newer_enough ]]; then
    ok "runsc already at least as new as Debian $RUNSC_SUITE's $runsc_candidate: $runsc_have_line${runsc_have_pkg:+ (package $runsc_have_pkg)}"
  else
    say "runsc ${runsc_have_line:-not installed}: installing Debian $RUNSC_SUITE's $runsc_candidate"
    install_runsc_deb
  fi
elif [[ -n $runsc_have_date ]] && ((runsc_have_date >= RUNSC_MIN_DATE)); then
  note "could not query Debian $RUNSC_SUITE for runsc; keeping installed $runsc_have_line"
else
  die "could not query Debian $RUNSC_SUITE for runsc and no usable runsc (>= $RUNSC_MIN_DATE) is installed"
fi
# The whole output, then its first line: `| head -n1` under pipefail fails when runsc is still writing its
# second line as head exits (SIGPIPE), which happened on a busy machine.
RUNSC_VERSION=$("$RUNSC_PATH" --version 2>&1) ||
  die "$RUNSC_PATH --version failed: $RUNSC_VERSION"
RUNSC_VERSION=${RUNSC_VERSION%%$'\n'*}
[[ $(version_date "$RUNSC_VERSION") -ge $RUNSC_MIN_DATE ]] ||
  die "$RUNSC_PATH is too old ($RUNSC_VERSION; need >= $RUNSC_MIN_DATE)"
say "runsc: $RUNSC_VERSION"

# ----------------------------------------------------- 4. daemon.json -------
# Deno does the JSON work: every other key and runtime in daemon.json is kept.
#   get            print runtimes.runsc (or null)
#   set MODE PATH  set runtimes.runsc.path=PATH; MODE=host adds --network=host to
#                  runtimeArgs, MODE=plain drops any --network=*; other fields
#                  and args of an existing runsc entry are kept. Prints
#                  "changed" or "unchanged"; writes only when changed.
# shellcheck disable=SC2016 # JavaScript, not shell
DAEMON_JSON_JS='
const [file, cmd, mode, path] = Deno.args;
let text = "";
try { text = Deno.readTextFileSync(file); } catch (e) {
  if (!(e instanceof Deno.errors.NotFound)) throw e;
}
let cfg = {};
if (text.trim() !== "") {
  try { cfg = JSON.parse(text); } catch (e) { throw new Error(`${file} is not valid JSON: ${e.message}`); }
}
const isObj = (v) => typeof v === "object" && v !== null && !Array.isArray(v);
if (!isObj(cfg)) throw new Error(`${file}: top level is not a JSON object`);
if (cfg.runtimes !== undefined && !isObj(cfg.runtimes)) throw new Error(`${file}: "runtimes" is not an object`);
if (cmd === "get") { console.log(JSON.stringify(cfg.runtimes?.runsc ?? null)); Deno.exit(0); }
if (cmd !== "set" || !["plain", "host"].includes(mode) || !path) throw new Error("usage: set plain|host PATH");
const before = JSON.stringify(cfg);
const runtimes = cfg.runtimes ?? {};
const old = isObj(runtimes.runsc) ? runtimes.runsc : {};
const entry = { ...old, path };
const args = (Array.isArray(old.runtimeArgs) ? old.runtimeArgs : []).filter((a) => !String(a).startsWith("--network="));
if (mode === "host") args.push("--network=host");
if (args.length > 0) entry.runtimeArgs = args; else delete entry.runtimeArgs;
runtimes.runsc = entry;
cfg.runtimes = runtimes;
if (text.trim() !== "" && JSON.stringify(cfg) === before) { console.log("unchanged"); Deno.exit(0); }
Deno.mkdirSync(file.replace(/\/[^/]*$/, ""), { recursive: true });
if (text !== "") Deno.writeTextFileSync(`${file}.moat-setup.bak`, text);
Deno.writeTextFileSync(`${file}.tmp`, JSON.stringify(cfg, null, 2) + "\n");
Deno.renameSync(`${file}.tmp`, file);
console.log("changed");
'
daemon_json() { (cd / && NO_COLOR=1 deno eval --no-config --no-lock "$DAEMON_JSON_JS" "$DAEMON_JSON" "$@"); }

# Writes the runsc entry for MODE; returns 0 when daemon.json changed.
set_runsc_mode() {
  local r
  r=$(daemon_json set "$1" "$RUNSC_PATH") || die "could not update $DAEMON_JSON"
  if [[ $r == changed ]]; then
    did "wrote runtimes.runsc = $(daemon_json get) into $DAEMON_JSON (other keys kept)"
    return 0
  fi
  return 1
}

existing_entry=$(daemon_json get) || die "could not read $DAEMON_JSON"
RUNSC_MODE=plain
if [[ $existing_entry == *'"--network=host"'* ]]; then
  if [[ ${MOAT_SETUP_REPROBE:-} == 1 ]]; then
    say "MOAT_SETUP_REPROBE=1: re-testing runsc without --network=host"
  else
    RUNSC_MODE=host
  fi
fi
if ! set_runsc_mode "$RUNSC_MODE"; then
  ok "$DAEMON_JSON already registers runsc: $existing_entry"
fi

# ------------------------------------------------------------- 5. dockerd ---
docker_ping() {
  if command -v curl >/dev/null 2>&1; then
    [[ $(curl -s --max-time 3 --unix-socket "$DOCKER_SOCK" http://d/_ping 2>/dev/null || true) == OK ]]
  else
    timeout 5 docker version >/dev/null 2>&1
  fi
}
dockerd_pid() {
  local p
  p=$(cat "$DOCKER_PIDFILE" 2>/dev/null || true)
  [[ -n $p && $(cat "/proc/$p/comm" 2>/dev/null || true) == dockerd ]] || return 1
  echo "$p"
}
wait_for_docker() { # $1 = pid to watch (optional)
  local i
  for ((i = 0; i < 60; i++)); do
    docker_ping && return 0
    if [[ -n ${1:-} ]] && ! kill -0 "$1" 2>/dev/null; then
      tail -n 20 "$DOCKERD_LOG" >&2 || true
      die "dockerd exited during startup (log: $DOCKERD_LOG)"
    fi
    sleep 0.5
  done
  tail -n 20 "$DOCKERD_LOG" >&2 || true
  die "dockerd did not answer on $DOCKER_SOCK within 30 s (log: $DOCKERD_LOG)"
}
start_dockerd() {
  local dockerd pid
  dockerd=$(command -v dockerd) || die "dockerd not found (is docker.io installed?)"
  printf '\n=== %s: started by moat scripts/setup.sh\n' "$(date -Is)" >>"$DOCKERD_LOG"
  # Own session, no terminal, output to the log: it outlives this script.
  setsid nohup "$dockerd" >>"$DOCKERD_LOG" 2>&1 </dev/null &
  pid=$!
  wait_for_docker "$pid"
  did "started dockerd (pid $(dockerd_pid || echo "$pid"), log $DOCKERD_LOG)"
}
stop_dockerd() {
  local pid i
  pid=$(dockerd_pid) || die "cannot find the running dockerd's pid ($DOCKER_PIDFILE) to restart it"
  kill -TERM "$pid"
  for ((i = 0; i < 60; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  die "dockerd (pid $pid) did not stop within 30 s"
}
# What the running daemon has for runsc: "none", "plain" or "host".
daemon_runsc_mode() {
  local out
  out=$(docker info --format '{{with index .Runtimes "runsc"}}{{.Path}} {{range .Args}}{{.}} {{end}}{{else}}none{{end}}' 2>/dev/null) ||
    { echo none; return; }
  case $out in
    none) echo none ;;
    "$RUNSC_PATH "*--network=host*) echo host ;;
    "$RUNSC_PATH "*) echo plain ;;
    *) echo other ;;
  esac
}
# Make the running daemon use daemon.json's runsc entry: SIGHUP (reloads
# "runtimes"), and restart if that did not take.
apply_daemon_json() {
  local want=$1 pid i
  [[ $(daemon_runsc_mode) == "$want" ]] && return 0
  if pid=$(dockerd_pid); then
    kill -HUP "$pid"
    for ((i = 0; i < 10; i++)); do
      if [[ $(daemon_runsc_mode) == "$want" ]]; then
        did "reloaded dockerd (SIGHUP pid $pid): runsc runtime now '$want'"
        return 0
      fi
      sleep 0.5
    done
    say "SIGHUP did not reload runtimes (docker info shows '$(daemon_runsc_mode)'); restarting dockerd"
  else
    say "dockerd's pid is unknown (no $DOCKER_PIDFILE); restarting it"
  fi
  stop_dockerd
  start_dockerd
  [[ $(daemon_runsc_mode) == "$want" ]] ||
    die "dockerd does not list runsc as '$want' after a restart: $(docker info --format '{{json .Runtimes}}' 2>&1)"
  did "restarted dockerd to load runsc runtime '$want'"
}

if docker_ping; then
  ok "dockerd answers on $DOCKER_SOCK (server $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
elif pid=$(dockerd_pid); then
  say "dockerd (pid $pid) is running but not answering yet; waiting"
  wait_for_docker "$pid"
  ok "dockerd answers on $DOCKER_SOCK"
else
  start_dockerd
fi
apply_daemon_json "$RUNSC_MODE"
ok "docker info lists runtime runsc ($(daemon_runsc_mode))"

# -------------------------------------------------------------- 6. images ---
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
image_id() { docker image inspect --format '{{.Id}}' "$1"; }
# docker import of a directory tree, owned by root inside the image.
import_dir() { # dir image change...
  local dir=$1 image=$2
  shift 2
  local changes=(--change "LABEL $IMAGE_LABEL")
  local c
  for c in "$@"; do changes+=(--change "$c"); done
  tar --numeric-owner --owner=0 --group=0 -C "$dir" -cf - . |
    docker import "${changes[@]}" - "$image" >/dev/null
}
# debootstrap --variant=minbase $DEBIAN_SUITE, without apt's caches and lists, imported as IMAGE.
debootstrap_image() { # image cmd [debootstrap option...]
  local image=$1 cmd=$2
  shift 2
  local root=$WORK/rootfs.${image//[:\/]/_} log=$WORK/debootstrap.${image//[:\/]/_}.log
  say "building $image with debootstrap --variant=minbase $* $DEBIAN_SUITE from $DEBIAN_MIRROR"
  if ! debootstrap --variant=minbase "$@" "$DEBIAN_SUITE" "$root" "$DEBIAN_MIRROR" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "debootstrap failed building $image ($DEBIAN_SUITE from $DEBIAN_MIRROR; its log's last lines are above)"
  fi
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/debootstrap
  import_dir "$root" "$image" "CMD [\"$cmd\"]"
}

if image_exists "$BUSYBOX_IMAGE"; then
  ok "image $BUSYBOX_IMAGE exists ($(image_id "$BUSYBOX_IMAGE"))"
else
  bb=$(command -v busybox || true)
  [[ -x /bin/busybox ]] && bb=/bin/busybox
  [[ -n $bb ]] || die "busybox not found (busybox-static)"
  root=$WORK/busybox-rootfs
  mkdir -p "$root/bin" "$root/etc" "$root/root" "$root/tmp"
  install -m 0755 "$bb" "$root/bin/busybox"
  "$root/bin/busybox" --install -s "$root/bin"
  # --install -s links to the path busybox was run as; make them relative.
  for l in "$root"/bin/*; do
    [[ -L $l ]] && ln -sfn busybox "$l"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  chmod 1777 "$root/tmp"
  chmod 700 "$root/root"
  import_dir "$root" "$BUSYBOX_IMAGE" 'CMD ["sh"]'
  did "built $BUSYBOX_IMAGE from busybox-static ($(image_id "$BUSYBOX_IMAGE"))"
fi

if image_exists "$DEBIAN_IMAGE"; then
  ok "image $DEBIAN_IMAGE exists ($(image_id "$DEBIAN_IMAGE"))"
elif timeout 20 docker pull -q "$DEBIAN_IMAGE" >"$WORK/pull.log" 2>&1; then
  did "pulled $DEBIAN_IMAGE ($(image_id "$DEBIAN_IMAGE"))"
else
  say "docker pull $DEBIAN_IMAGE failed: $(tail -n1 "$WORK/pull.log")"
  debootstrap_image "$DEBIAN_IMAGE" bash
  did "built $DEBIAN_IMAGE with debootstrap ($(image_id "$DEBIAN_IMAGE"))"
fi

if image_exists "$CLIENTS_IMAGE"; then
  ok "image $CLIENTS_IMAGE exists ($(image_id "$CLIENTS_IMAGE"))"
else
  debootstrap_image "$CLIENTS_IMAGE" bash "--include=$CLIENTS_PACKAGES"
  did "built $CLIENTS_IMAGE with debootstrap, including $CLIENTS_PACKAGES ($(image_id "$CLIENTS_IMAGE"))"
fi

# --------------------------------------------------------------- 7. probe ---
# When a runsc container fails to start, `docker run --rm` forgets it but
# containerd keeps the task "created" with a live runsc-sandbox and gofer
# (`ctr tasks delete` refuses: "cannot signal container ... in state created").
# runsc delete --force stops the sandbox, then containerd can drop it.
reap_failed_runsc() { # container id
  local id=$1 root addr left=
  for root in /var/run/docker/runtime-*/moby; do
    if [[ -d $root ]]; then "$RUNSC_PATH" --root="$root" delete --force "$id" >/dev/null 2>&1 || true; fi
  done
  command -v ctr >/dev/null 2>&1 || return 0
  for addr in /var/run/docker/containerd/containerd.sock /run/containerd/containerd.sock; do
    [[ -S $addr ]] || continue
    ctr --address "$addr" -n moby tasks delete "$id" >/dev/null 2>&1 || true
    ctr --address "$addr" -n moby containers delete "$id" >/dev/null 2>&1 || true
    if ctr --address "$addr" -n moby containers ls -q 2>/dev/null | grep -qx "$id"; then left=1; fi
  done
  if [[ -n $left ]]; then
    note "failed probe container $id is still known to containerd (ctr -n moby containers ls)"
  else
    say "cleaned up the failed probe container ${id:0:12} left behind in containerd"
  fi
}
PROBE_OUT=
PROBE_N=0
probe_gvisor() {
  local cid=$WORK/probe.$((++PROBE_N)).cid
  if ! PROBE_OUT=$(docker run --rm --cidfile "$cid" --runtime=runsc "$BUSYBOX_IMAGE" sh -c 'uname -r; dmesg' 2>&1); then
    if [[ -s $cid ]]; then reap_failed_runsc "$(cat "$cid")"; fi
    return 1
  fi
  [[ $(head -n1 <<<"$PROBE_OUT") == 4.4.0 && $PROBE_OUT == *"Starting gVisor"* ]]
}
FALLBACK_REASON=
if probe_gvisor; then
  ok "runsc probe: uname -r = 4.4.0 and dmesg shows 'Starting gVisor' (runtime '$RUNSC_MODE')"
elif [[ $RUNSC_MODE == plain && $PROBE_OUT == *"$NETSTACK_ERR"* ]]; then
  FALLBACK_REASON=$(grep -F -m1 "$NETSTACK_ERR" <<<"$PROBE_OUT")
  say "runsc probe failed: gVisor's own network stack refuses to start here:"
  say "  $FALLBACK_REASON"
  note "falling back to runsc --network=host: the sandbox then uses the HOST's network stack (weaker network isolation)"
  RUNSC_MODE=host
  set_runsc_mode host || true
  apply_daemon_json host
  probe_gvisor || die "runsc probe failed with --network=host too: $PROBE_OUT"
  ok "runsc probe with --network=host: uname -r = 4.4.0 and dmesg shows 'Starting gVisor'"
else
  die "runsc probe failed (runtime '$RUNSC_MODE'): $PROBE_OUT"
fi
if [[ $RUNSC_MODE == host && -z $FALLBACK_REASON ]]; then
  note "runsc runs with --network=host (chosen by an earlier probe: gVisor's netstack refused to start here); MOAT_SETUP_REPROBE=1 re-tests without it"
fi

if out=$(docker run --rm --runtime=runsc "$DEBIAN_IMAGE" ls -la / 2>&1); then
  ok "GNU ls -la / works in $DEBIAN_IMAGE under runsc ($(wc -l <<<"$out") lines)"
else
  die "ls -la / failed in $DEBIAN_IMAGE under runsc: $out"
fi

# ------------------------------------------------------------- 8. summary ---
echo
echo "setup: summary ($((SECONDS - START_SECONDS)) s)"
echo "  deno:    $(deno --version | head -n1)"
echo "  docker:  server $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'), dockerd pid $(dockerd_pid || echo '?'), log $DOCKERD_LOG"
echo "  runsc:   $RUNSC_VERSION${runsc_candidate:+ (Debian $RUNSC_SUITE candidate $runsc_candidate)}"
echo "  runtime: $DAEMON_JSON runtimes.runsc = $(daemon_json get)"
[[ -z $FALLBACK_REASON ]] || echo "           network fallback because: $FALLBACK_REASON"
echo "  images:  $BUSYBOX_IMAGE $(image_id "$BUSYBOX_IMAGE")"
echo "           $DEBIAN_IMAGE $(image_id "$DEBIAN_IMAGE")"
echo "           $CLIENTS_IMAGE $(image_id "$CLIENTS_IMAGE")"
for n in "${NOTES[@]}"; do echo "  note:    $n"; done
if ((${#CHANGES[@]} == 0)); then
  echo "  changes: none (already set up)"
else
  for c in "${CHANGES[@]}"; do echo "  changed: $c"; done
fi
