/** Help texts. Kept beside each other so `--help` and docs/reference/cli.md are easy to compare. */
import { DEFAULT_IMAGE } from "../run/image.ts";

export const MAIN_HELP =
  `moat — run a command or coding agent against a workspace, inside a gVisor-sandboxed container

Usage:
  moat COMMAND [OPTIONS]
  moat --version
  moat --help

Commands:
  run        Run a command in a container with a workspace mounted at /workspace (gVisor by default)
  exec       Run another command in a run that is still running (moat run -d)
  list, ls   List runs, newest first
  status     Engine, gVisor and run counts at a glance
  logs       Show (or follow) a run's recorded output
  wait       Wait for a run to end and print its exit code
  stop       Stop a run
  destroy    Remove a run's container and record
  clean      Remove finished runs and orphaned containers
  system     Show the containers and images moat uses on the engine
  doctor     Check that sandboxed runs work here, and say how to fix what does not
  grant      Keep a credential on this host for the hosts it belongs to (runs use it: --grant)
  revoke     Remove a grant
  audit      Print, check or export a run's tamper-evident audit log

Every run is sandboxed with gVisor (runsc) unless you say otherwise with --no-sandbox or
'sandbox: none' in moat.yaml; when gVisor is not available moat refuses to run.
The other commands never need gVisor.

Run 'moat COMMAND --help' for a command's options. Docs: docs/reference/cli.md
`;

export const RUN_HELP = `Usage: moat run [OPTIONS] [WORKSPACE] [-- COMMAND [ARG...]]

Run COMMAND in a new container with WORKSPACE (default: the current directory) bind-mounted at
/workspace, which is the working directory. The command runs as the owner of WORKSPACE, under
gVisor (runsc) unless the sandbox is turned off. stdout and stderr are the container's, byte for
byte; moat's own messages go to stderr. The exit code is the command's.

Options:
      --sandbox          Require gVisor even if moat.yaml or MOAT_NO_SANDBOX turns it off
      --no-sandbox       Run without gVisor (a plain container; prints a warning)
      --image IMAGE      Image to run (default: image: in moat.yaml, else $MOAT_IMAGE, else ${DEFAULT_IMAGE})
  -e, --env KEY=VALUE    Set an environment variable (repeatable; beats env: in moat.yaml);
                         -e KEY alone passes moat's own value of KEY
      --name NAME        Name the run (default: name: in moat.yaml); refused while another run
                         with that name is still running (finished runs may share a name)
  -u, --user UID[:GID]   Run as this user instead of the workspace owner
  -i, --interactive      Pipe moat's stdin to the command (EOF closes the command's stdin)
  -t, --tty              Give the command a terminal (stdin must be one); with -i, keys go
                         straight to it, Ctrl-C included, and its size follows yours
  -d, --detach           Start the command in the background: print the run id and return;
                         the output is still recorded (moat logs -f ID follows it, and
                         moat wait ID prints its exit code once it ends)
      --keep             Keep the container after it exits (for docker inspect / docker logs)
      --warm             Take a sandbox booted ahead for runs like this one, and boot the next
                         after the run (also warm: in moat.yaml, MOAT_WARM=1); one run each
  -m, --memory SIZE      Memory limit, e.g. 512m or 2g (default: memory: in moat.yaml, else none)
      --cpus N           CPU limit, e.g. 1.5 (default: cpus: in moat.yaml, else none)
      --pids N           Most processes at once (default: pids: in moat.yaml, else 1024)
      --network MODE     allowlist: only the hosts --allow names (none when it names
                         none), none: loopback only, default: the engine's network
                         (default: network: in moat.yaml, else allowlist)
      --allow HOST       Reach only the hosts named (repeatable; api.github.com,
                         '*.npmjs.org', host:port); implies --network allowlist
      --grant NAME       Use the credential of grant NAME (moat grant): moat adds it
                         to the requests for its hosts, the sandbox sees a placeholder
                         (repeatable; also grants: in moat.yaml)
      --read-only        Read-only root filesystem; /workspace and a fresh /tmp stay writable
  -h, --help             Show this help

Configuration: WORKSPACE/moat.yaml (or agent.yaml) with name, image, command, env, sandbox, runtime,
memory, cpus, pids, network, read_only, mounts, grants, warm.

Every container drops all capabilities but a documented few, runs with no-new-privileges and an
init process as PID 1, and has a process limit, with or without gVisor.
Environment:   MOAT_NO_SANDBOX=1, MOAT_RUNTIME, MOAT_IMAGE, MOAT_HOME, MOAT_ENGINE_TIMEOUT,
               MOAT_ENGINE_START_TIMEOUT, DOCKER_HOST, MOAT_WARM=1|0, MOAT_STANDBY=0 (nothing
               made ahead of the next run: no network, no warm sandbox), MOAT_STANDBY_IDLE
               (seconds one waits, default 600).

Interrupts: the first SIGINT (Ctrl-C; with -it Ctrl-C goes to the command instead), SIGTERM or
SIGHUP stops the container (SIGTERM, then SIGKILL after 5 s); a second one kills it at once. The
container is removed either way.

Exit codes: the command's own code; 2 usage or config error; 125 moat or engine failure;
126/127 command not executable/not found; 128+N interrupted by signal N (130 SIGINT, 143 SIGTERM,
129 SIGHUP).

Examples:
  moat run -- dmesg                          # see gVisor's kernel messages
  moat run ~/src/app -- npm test
  moat run --no-sandbox -- uname -r          # plain container, host kernel
  moat run -it -- sh                         # an interactive shell in the sandbox
  echo hi | moat run -i -- cat
  id=$(moat run -d -- make test) && moat logs -f --exit-code "$id"
`;
