/**
 * `moat run` against the real engine: what only the daemon and gVisor can prove.
 */
import assert from "node:assert/strict";
import { decodeOutput } from "../../lib/store/records.ts";
import {
  containersFor,
  docker,
  moat,
  moatEnv,
  onlyRecord,
  requireEngine,
  ROOT,
  sandboxesFor,
  scratch,
  TEST_IMAGE,
} from "./helpers.ts";

await requireEngine();

const img = ["--image", TEST_IMAGE];

Deno.test("a default run happens under gVisor: its kernel prints gVisor's boot lines and reports 4.4.0", async () => {
  const s = await scratch();
  try {
    const r = await moat(["run", ...img, s.ws, "--", "sh", "-c", "dmesg; uname -r"], { home: s.home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.out, /Starting gVisor/);
    assert.match(r.out, /^4\.4\.0$/m);
    assert.equal(r.stderr, "", "a sandboxed run prints nothing of its own when not on a terminal");
    const rec = await onlyRecord(s.home);
    assert.equal(rec.runtime, "runsc");
    assert.equal(rec.state, "exited");
    assert.equal(rec.exitCode, 0);
    assert.deepEqual(await containersFor(s.ws), [], "the container is removed");
  } finally {
    await s.cleanup();
  }
});

Deno.test("the default image runs GNU tools under gVisor", async () => {
  const s = await scratch();
  try {
    const r = await moat(["run", s.ws, "--", "ls", "-la", "/workspace"], { home: s.home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.out, /^total /m);
  } finally {
    await s.cleanup();
  }
});

Deno.test("--keep leaves the container, and the engine says its runtime was runsc", async () => {
  const s = await scratch();
  try {
    const r = await moat(["run", "--keep", ...img, s.ws, "--", "true"], { home: s.home });
    assert.equal(r.code, 0, r.stderr);
    const ids = await containersFor(s.ws);
    assert.equal(ids.length, 1);
    const inspect = JSON.parse(await docker("inspect", ids[0]!))[0];
    assert.equal(inspect.HostConfig.Runtime, "runsc");
    assert.equal(inspect.Config.Labels["dev.moat.runtime"], "runsc");
    assert.equal(inspect.Config.Labels["dev.moat.sandbox"], "gvisor");
    assert.equal(inspect.Config.Labels["dev.moat.run-id"], (await onlyRecord(s.home)).id);
    assert.equal(inspect.Config.WorkingDir, "/workspace");
    await docker("rm", "-f", ids[0]!);
  } finally {
    await s.cleanup();
  }
});

Deno.test("--no-sandbox warns once, uses the daemon's default runtime and the host kernel", async () => {
  const s = await scratch();
  try {
    const r = await moat(["run", "--no-sandbox", "--keep", ...img, s.ws, "--", "uname", "-r"], {
      home: s.home,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out.trim(), Deno.osRelease(), "the host's kernel, not gVisor's");
    const warnings = r.stderr.split("\n").filter((l) => /warning/.test(l));
    assert.equal(warnings.length, 1, r.stderr);
    assert.match(warnings[0]!, /reduced isolation/);
    const ids = await containersFor(s.ws);
    const inspect = JSON.parse(await docker("inspect", ids[0]!))[0];
    const defaultRuntime = (await docker("info", "--format", "{{.DefaultRuntime}}")).trim();
    assert.equal(inspect.HostConfig.Runtime, defaultRuntime);
    assert.equal((await onlyRecord(s.home)).runtime, defaultRuntime);
    await docker("rm", "-f", ids[0]!);
  } finally {
    await s.cleanup();
  }
});

for (const code of [0, 1, 7, 42, 255]) {
  Deno.test(`the container's exit code ${code} is moat's exit code`, async () => {
    const s = await scratch();
    try {
      const r = await moat(["run", ...img, s.ws, "--", "sh", "-c", `exit ${code}`], { home: s.home });
      assert.equal(r.code, code, r.stderr);
      assert.equal((await onlyRecord(s.home)).exitCode, code);
    } finally {
      await s.cleanup();
    }
  });
}

/** `size` bytes covering every byte value, the same for the same `seed` (a linear congruential generator). */
function pseudoRandomBytes(size: number, seed: number): Uint8Array {
  const data = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  return data;
}

Deno.test("stdout and stderr stay separate and byte-exact for 8 MiB each", async () => {
  const s = await scratch();
  try {
    // 8 MiB of pseudo-random bytes (every byte value) in the workspace; the container copies them out.
    const size = 8 * 1024 * 1024;
    const data = pseudoRandomBytes(size, 12345);
    await Deno.writeFile(`${s.ws}/blob`, data);
    const r = await moat(
      ["run", ...img, s.ws, "--", "sh", "-c", "cat blob; cat blob >&2; echo tail >&2"],
      { home: s.home },
    );
    assert.equal(r.code, 0);
    assert.equal(r.stdout.byteLength, size);
    assert.deepEqual(r.stdout, data);
    const tail = new TextEncoder().encode("tail\n");
    const expectedErr = new Uint8Array(size + tail.byteLength);
    expectedErr.set(data);
    expectedErr.set(tail, size);
    assert.deepEqual(r.stderrBytes, expectedErr);
    const rec = await onlyRecord(s.home);
    const frames = [...decodeOutput(await Deno.readFile(`${s.home}/runs/${rec.id}/output.bin`))];
    const out = frames.filter((f) => f.stream === 1).reduce((n, f) => n + f.data.byteLength, 0);
    const err = frames.filter((f) => f.stream === 2).reduce((n, f) => n + f.data.byteLength, 0);
    assert.equal(out, size, "the record holds all of stdout");
    assert.equal(err, size + 5, "the record holds all of stderr");
  } finally {
    await s.cleanup();
  }
});

Deno.test("redirected to files (written synchronously), stdout and stderr are byte-exact too", async () => {
  const s = await scratch();
  try {
    const size = 4 * 1024 * 1024 + 3;
    const data = pseudoRandomBytes(size, 777);
    await Deno.writeFile(`${s.ws}/blob`, data);
    const out = `${s.home}/out`, err = `${s.home}/err`;
    const args = [
      "run",
      "-A",
      `${ROOT}/main.ts`,
      "run",
      ...img,
      s.ws,
      "--",
      "sh",
      "-c",
      "cat blob; cat blob >&2",
    ];
    const r = await new Deno.Command("sh", {
      args: ["-c", 'exec "$0" "$@" >"$OUT" 2>"$ERR"', Deno.execPath(), ...args],
      env: { ...moatEnv(s.home), OUT: out, ERR: err },
      clearEnv: true,
      cwd: ROOT,
    }).output();
    assert.equal(r.code, 0, await Deno.readTextFile(err));
    assert.deepEqual(await Deno.readFile(out), data);
    assert.deepEqual(await Deno.readFile(err), data);
  } finally {
    await s.cleanup();
  }
});

Deno.test("files the command creates in the workspace belong to the workspace owner", async () => {
  const s = await scratch();
  try {
    await Deno.chown(s.ws, 1234, 2345);
    const r = await moat(
      ["run", s.ws, "--", "sh", "-c", 'id -u; id -g; echo "$HOME"; touch "$HOME/ok" made && echo done'],
      { home: s.home },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.out.trim().split("\n"), ["1234", "2345", "/tmp", "done"]);
    const st = await Deno.stat(`${s.ws}/made`);
    assert.equal(st.uid, 1234);
    assert.equal(st.gid, 2345);
  } finally {
    await s.cleanup();
  }
});

Deno.test("--user overrides the owner, and a named user without a home gets HOME=/tmp", async () => {
  const s = await scratch();
  try {
    const r = await moat(["run", "--user", "nobody", s.ws, "--", "sh", "-c", 'id -un; echo "$HOME"'], {
      home: s.home,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.out.trim().split("\n"), ["nobody", "/tmp"]);
    const ids = await docker(
      "ps",
      "-aq",
      "--filter",
      `label=dev.moat.workspace=${await Deno.realPath(s.ws)}`,
    );
    assert.equal(ids.trim(), "", "the passwd probe container is removed too");
  } finally {
    await s.cleanup();
  }
});

Deno.test("-u with a name the image lacks names the user and how to list the image's users, not gVisor", async () => {
  const s = await scratch();
  try {
    const r = await moat(["run", ...img, "-u", "nosuchuser", s.ws, "--", "true"], { home: s.home });
    assert.equal(r.code, 125, r.stderr);
    const [first, ...hint] = r.stderr.trimEnd().split("\n");
    assert.match(first ?? "", /^moat: The image has no user "nosuchuser": unable to find user nosuchuser/);
    assert.match(hint.join("\n"), /cat \/etc\/passwd/);
    assert.doesNotMatch(r.stderr, /gVisor|runsc|debug-log/);
    assert.deepEqual(await containersFor(s.ws), []);
  } finally {
    await s.cleanup();
  }
});

Deno.test("-i pipes stdin to the command and its EOF ends the command's input", async () => {
  const s = await scratch();
  try {
    const input = new TextEncoder().encode("line one\nline two\n");
    const r = await moat(["run", "-i", ...img, s.ws, "--", "sh", "-c", "wc -l; echo after-eof"], {
      home: s.home,
      stdin: input,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.out.trim().split(/\s+/), ["2", "after-eof"]);
  } finally {
    await s.cleanup();
  }
});

Deno.test("config env and -e reach the command, -e winning", async () => {
  const s = await scratch();
  try {
    await Deno.writeTextFile(`${s.ws}/moat.yaml`, `image: ${TEST_IMAGE}\nenv:\n  A: from-config\n  B: 2\n`);
    const r = await moat(["run", "-e", "A=from-flag", s.ws, "--", "sh", "-c", 'echo "$A $B"'], {
      home: s.home,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, "from-flag 2\n");
  } finally {
    await s.cleanup();
  }
});

Deno.test("a registered runtime that is not gVisor (runc) is refused: nothing starts, no container or record is left", async () => {
  const s = await scratch();
  try {
    for (const extra of [[], ["--keep"]]) {
      const r = await moat(["run", ...img, ...extra, s.ws, "--", "sh", "-c", "touch /workspace/ran"], {
        home: s.home,
        env: { MOAT_RUNTIME: "runc" },
      });
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, /^moat: Runtime "runc" on the Docker engine is not gVisor/);
      assert.deepEqual(await containersFor(s.ws), [], "the unstarted container is removed");
      const records = await Array.fromAsync(Deno.readDir(`${s.home}/runs`)).catch(() => []);
      assert.equal(records.length, 0, "no run record");
      await assert.rejects(Deno.stat(`${s.ws}/ran`), Deno.errors.NotFound, "the command never ran");
    }
  } finally {
    await s.cleanup();
  }
});

Deno.test("an unregistered gVisor runtime fails closed with install steps and bypasses; nothing is created", async () => {
  const s = await scratch();
  try {
    const r = await moat(["run", ...img, s.ws, "--", "true"], {
      home: s.home,
      env: { MOAT_RUNTIME: "runsc-absent" },
    });
    assert.equal(r.code, 125);
    assert.equal(r.out, "");
    assert.match(r.stderr, /^moat: gVisor runtime "runsc-absent" is not registered with the Docker engine/);
    assert.match(r.stderr, /daemon\.json/);
    assert.match(r.stderr, /--no-sandbox/);
    assert.match(r.stderr, /sandbox: none/);
    assert.deepEqual(await containersFor(s.ws), []);
    const records = await Array.fromAsync(Deno.readDir(`${s.home}/runs`)).catch(() => []);
    assert.equal(records.length, 0, "no run record");
  } finally {
    await s.cleanup();
  }
});

Deno.test("a stopped engine is reported as the engine, exit 125, never as gVisor missing", async () => {
  const s = await scratch();
  try {
    const r = await moat(["run", s.ws, "--", "true"], {
      home: s.home,
      env: { DOCKER_HOST: `unix://${s.home}/no-engine.sock` },
    });
    assert.equal(r.code, 125);
    assert.match(r.stderr, /^moat: Docker engine not found: no socket at unix:\/\/.*no-engine\.sock/);
    assert.doesNotMatch(r.stderr, /gVisor/);
  } finally {
    await s.cleanup();
  }
});

for (
  const [label, yaml, re] of [
    ["sandbox: false", "sandbox: false\n", /moat\.yaml:1:10: sandbox: must be one of "gvisor", "none"/],
    ["an unknown key", "image: x\nsandbx: none\n", /moat\.yaml:2:1: sandbx: unknown key "sandbx"/],
  ] as const
) {
  Deno.test(`a config with ${label} exits 2 with file:line:column and creates nothing`, async () => {
    const s = await scratch();
    try {
      await Deno.writeTextFile(`${s.ws}/moat.yaml`, yaml);
      const r = await moat(["run", s.ws, "--", "true"], { home: s.home });
      assert.equal(r.code, 2);
      assert.match(r.stderr, re);
      assert.deepEqual(await containersFor(s.ws), []);
    } finally {
      await s.cleanup();
    }
  });
}

Deno.test("a missing image explains air-gapped use", async () => {
  const s = await scratch();
  try {
    const r = await moat(["run", "--image", "moat-test/does-not-exist:1", s.ws, "--", "true"], {
      home: s.home,
    });
    assert.equal(r.code, 125);
    assert.match(
      r.stderr,
      /Image "moat-test\/does-not-exist:1" is not on the Docker engine and could not be pulled/,
    );
    assert.match(r.stderr, /docker load -i/);
    assert.equal(r.out, "");
  } finally {
    await s.cleanup();
  }
});

Deno.test("a command missing from the image exits 127 and leaves no container", async () => {
  const s = await scratch();
  try {
    const r = await moat(["run", ...img, s.ws, "--", "no-such-command"], { home: s.home });
    assert.equal(r.code, 127, r.stderr);
    // The init process (PID 1 of every moat container) starts, then cannot exec the command.
    assert.match(r.stderr, /exec no-such-command failed: No such file or directory/);
    assert.deepEqual(await containersFor(s.ws), []);
    const rec = await onlyRecord(s.home);
    assert.deepEqual([rec.state, rec.exitCode], ["exited", 127]);
  } finally {
    await s.cleanup();
  }
});

for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  Deno.test(`${sig} during a run stops and removes the container, records it, and exits ${code}`, async () => {
    const s = await scratch();
    try {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${ROOT}/main.ts`, "run", ...img, s.ws, "--", "sh", "-c", "echo ready; sleep 60"],
        env: moatEnv(s.home),
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const reader = child.stdout.getReader();
      let seen = "";
      while (!seen.includes("ready")) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += new TextDecoder().decode(value);
      }
      assert.match(seen, /ready/);
      assert.equal((await sandboxesFor(s.ws)).length, 1, "running");
      child.kill(sig);
      reader.releaseLock();
      await child.stdout.cancel();
      const status = await child.status;
      const stderr = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
      assert.equal(status.code, code, stderr);
      assert.deepEqual(await containersFor(s.ws), [], "no container is left");
      const rec = await onlyRecord(s.home);
      assert.equal(rec.state, "interrupted");
      assert.equal(rec.signal, sig);
      assert.equal(rec.removed, true);
    } finally {
      await s.cleanup();
    }
  });
}

Deno.test("on a terminal a spinner shows until the container starts and is erased before its output", async () => {
  const s = await scratch();
  try {
    const inner =
      `'${Deno.execPath()}' run -A '${ROOT}/main.ts' run --image ${TEST_IMAGE} '${s.ws}' -- sh -c 'echo hello-from-box'`;
    const { code, stdout } = await new Deno.Command("script", {
      args: ["-qec", inner, "/dev/null"],
      env: moatEnv(s.home),
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(stdout);
    assert.equal(code, 0, text);
    assert.match(text, /Starting container…/);
    const erase = text.lastIndexOf("\r\x1b[2K");
    const output = text.indexOf("hello-from-box");
    assert.ok(erase >= 0 && output > erase, "the last erase comes before the container's output");
    assert.doesNotMatch(text.slice(output), /Starting container/);
  } finally {
    await s.cleanup();
  }
});

Deno.test("SIGINT at any moment of startup leaves no container behind", async () => {
  const s = await scratch();
  try {
    for (const delayMs of [0, 100, 250, 400, 600, 900, 1300]) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${ROOT}/main.ts`, "run", ...img, s.ws, "--", "sleep", "30"],
        env: moatEnv(s.home),
        clearEnv: true,
        stdout: "null",
        stderr: "piped",
      }).spawn();
      await new Promise((r) => setTimeout(r, delayMs));
      child.kill("SIGINT");
      const { code, stderr } = await child.output();
      assert.equal(code, 130, `after ${delayMs} ms: ${new TextDecoder().decode(stderr)}`);
      assert.deepEqual(await containersFor(s.ws), [], `no container after an interrupt at ${delayMs} ms`);
    }
  } finally {
    await s.cleanup();
  }
});

Deno.test("closing moat's stdout early ends the command with SIGPIPE (exit 141) and removes the container", async () => {
  const s = await scratch();
  try {
    // moat's own exit status goes through a file: the pipeline's status is head's.
    const script =
      `'${Deno.execPath()}' run -A '${ROOT}/main.ts' run --image ${TEST_IMAGE} '${s.ws}' -- seq 10000000; echo $? > '${s.home}/code'`;
    const r = await new Deno.Command("sh", {
      args: ["-c", `(${script}) | head -n 1`],
      env: moatEnv(s.home),
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(new TextDecoder().decode(r.stdout), "1\n");
    const stderr = new TextDecoder().decode(r.stderr);
    assert.doesNotMatch(stderr, /internal error/);
    assert.equal((await Deno.readTextFile(`${s.home}/code`)).trim(), "141", stderr);
    assert.deepEqual(await containersFor(s.ws), []);
  } finally {
    await s.cleanup();
  }
});
