/** `moat exec` (lib/cli/exec.ts, lib/run/exec.ts): its arguments, the exec it creates, the engine's refusals. */
import assert from "node:assert/strict";
import { parseExecArgs } from "../../lib/cli/exec.ts";
import { execBody, startFailure } from "../../lib/run/exec.ts";
import { UsageError } from "../../lib/errors.ts";

Deno.test("moat exec arguments: RUN, then the command after --; flags before it", () => {
  assert.deepEqual(parseExecArgs(["abc", "--", "ls", "-la"]), {
    help: false,
    ref: "abc",
    command: ["ls", "-la"],
    interactive: false,
    tty: false,
    env: [],
    user: undefined,
  });
  const it = parseExecArgs(["-it", "-e", "A=1", "-e", "B", "-u", "1000", "abc", "--", "bash", "--", "-x"]);
  assert.deepEqual([it.interactive, it.tty, it.env, it.user, it.command], [true, true, ["A=1", "B"], "1000", [
    "bash",
    "--",
    "-x",
  ]]);
  assert.equal(parseExecArgs(["--help"]).help, true);
  const refused: Array<[string[], RegExp]> = [
    [[], /moat exec needs the RUN/],
    [["abc"], /moat exec needs a COMMAND after --/],
    [["abc", "ls", "x"], /The command goes after --: moat exec abc -- ls x/],
    [["abc", "--"], /Nothing follows --/],
    [["--", "ls"], /moat exec needs the RUN/],
    [["-u", "", "abc", "--", "ls"], /--user is empty/],
    [["--detach", "abc", "--", "ls"], /--detach/],
  ];
  for (const [args, re] of refused) {
    assert.throws(
      () => parseExecArgs(args),
      (e: unknown) => e instanceof UsageError && e.exitCode === 2 && re.test(e.message),
      args.join(" "),
    );
  }
});

Deno.test("the exec moat creates: through /bin/sh without a terminal (its pid first on stderr), as it is with one", () => {
  const req = { containerId: "c", command: ["ls", "-la"], env: { A: "1" }, tty: false, interactive: true };
  assert.deepEqual(execBody(req, true), {
    Cmd: ["/bin/sh", "-c", 'echo "$$" >&2; exec "$@"', "moat exec", "ls", "-la"],
    Env: ["A=1"],
    WorkingDir: "/workspace",
    Tty: false,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
  });
  const tty = execBody({ ...req, tty: true, user: "1000:1000" }, false);
  assert.deepEqual([tty.Cmd, tty.User, tty.Tty], [["ls", "-la"], "1000:1000", true]);
});

Deno.test("startFailure: the engine's words for a process it could not start, as a shell's exit code", () => {
  const notFound =
    'OCI runtime exec failed: executing processes for container: executing command "/nonexistent" in sandbox: failed to load /nonexistent: no such file or directory: unknown\r\n';
  assert.deepEqual(startFailure(notFound), {
    code: 127,
    reason: "failed to load /nonexistent: no such file or directory",
  });
  const denied =
    'OCI runtime exec failed: executing processes for container: executing command "/etc/passwd" in sandbox: failed to load /etc/passwd: permission denied: unknown\r\n';
  assert.deepEqual(startFailure(denied), {
    code: 126,
    reason: "failed to load /etc/passwd: permission denied",
  });
  assert.equal(startFailure("hello\n"), undefined);
});
