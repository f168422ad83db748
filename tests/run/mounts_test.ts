import assert from "node:assert/strict";
import type { ConfigMount } from "../../lib/config/types.ts";
import { ConfigError } from "../../lib/errors.ts";
import {
  checkMountKinds,
  checkMountTargets,
  type PathKind,
  resolveMounts,
  targetsToProbe,
} from "../../lib/run/mounts.ts";

const t = (...targets: string[]) => targets.map((target) => ({ target }));

const targetsOk: [string, { target: string }[], boolean?][] = [
  ["no mounts", []],
  ["one plain target", t("/data")],
  ["nested targets", t("/data", "/data/cache")],
  ["a target that merely starts like /workspace", t("/workspaces", "/workspace-old")],
  ["a target inside /proc's neighbours", t("/processes", "/devices", "/system")],
  ["inside /dev and /sys", t("/dev/shm/x", "/sys/x")],
  ["/tmp without read_only", t("/tmp")],
  ["inside /tmp with read_only", t("/tmp/data"), true],
];
for (const [label, mounts, readOnly] of targetsOk) {
  Deno.test(`mount targets allowed: ${label}`, () => {
    assert.equal(checkMountTargets(mounts, { readOnly: readOnly ?? false }), undefined);
  });
}

// [label, targets, read_only, index of the offending mount, problem, hint]
const targetsBad: [string, { target: string }[], boolean, number, RegExp, RegExp][] = [
  ["a relative target", t("data"), false, 0, /^must be an absolute path .*; got "data"$/, /target: \/data$/],
  ["a dot target", t("."), false, 0, /absolute path/, /target: \/$/],
  ["a .. segment", t("/a/../b"), false, 0, /written plainly.*; got "\/a\/..\/b"$/, /target: \/b$/],
  ["a . segment", t("/a/./b"), false, 0, /written plainly/, /target: \/a\/b$/],
  ["a trailing slash", t("/data/"), false, 0, /written plainly/, /target: \/data$/],
  ["a double slash", t("//data"), false, 0, /written plainly/, /target: \/data$/],
  ["the root", t("/"), false, 0, /^"\/" would hide \/workspace and replace the container's whole/, /\/data/],
  [
    "the workspace",
    t("/workspace"),
    false,
    0,
    /^"\/workspace" is \/workspace, where moat mounts/,
    /workspace/,
  ],
  ["inside the workspace", t("/workspace/node_modules"), false, 0, /is inside \/workspace/, /target: \/data/],
  ["/proc", t("/proc"), false, 0, /is in \/proc/, /target: \/data/],
  ["inside /proc", t("/proc/foo"), false, 0, /runc refuses/, /target: \/data/],
  ["/dev", t("/dev"), false, 0, /would replace the \/dev/, /target: \/data/],
  ["/sys", t("/sys"), false, 0, /would replace the \/sys/, /target: \/data/],
  ["/tmp with read_only", t("/tmp"), true, 0, /read_only: true puts a writable tmpfs/, /\/tmp\/data/],
  ["a duplicate", t("/a", "/b", "/a"), false, 2, /^"\/a" is also the target of mounts\[0\]$/, /its own/],
  ["the first problem wins", t("/ok", "rel", "/workspace"), false, 1, /absolute/, /target: \/rel/],
];
for (const [label, mounts, readOnly, index, problem, hint] of targetsBad) {
  Deno.test(`mount targets refused: ${label}`, () => {
    const bad = checkMountTargets(mounts, { readOnly });
    assert.ok(bad, "expected a problem");
    assert.equal(bad.index, index);
    assert.equal(bad.mount, mounts[index]);
    assert.match(bad.problem, problem);
    assert.match(bad.hint, hint);
  });
}

/**
 * A workspace with `data/`, a file, a link to `data`, links (symbolic and hard) to a stand-in engine socket
 * beside it, and elsewhere a file named docker.sock.
 */
async function scratch(): Promise<
  { root: string; ws: string; socket: string; cleanup: () => Promise<void> }
> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "moat-mounts-" }));
  const ws = `${root}/ws`;
  await Deno.mkdir(`${ws}/data`, { recursive: true });
  await Deno.writeTextFile(`${ws}/file`, "x");
  await Deno.symlink(`${ws}/data`, `${ws}/link`);
  await Deno.mkdir(`${root}/run`);
  // A regular file is enough to stand for the socket: the checks go by path and inode, not file type.
  const socket = `${root}/run/engine.sock`;
  await Deno.writeTextFile(socket, "");
  await Deno.mkdir(`${root}/other`);
  await Deno.writeTextFile(`${root}/other/docker.sock`, "");
  await Deno.symlink(socket, `${ws}/sock-link`);
  await Deno.link(socket, `${ws}/sock-hard`);
  return { root, ws, socket, cleanup: () => Deno.remove(root, { recursive: true }) };
}

let line = 0;
const m = (source: string, target = `/m${line + 1}`, readonly = false): ConfigMount => ({
  source,
  target,
  readonly,
  where: { file: "/w/moat.yaml", line: ++line, col: 5 },
});

Deno.test("resolveMounts resolves relative, absolute and linked sources to real paths", async () => {
  const s = await scratch();
  try {
    const got = await resolveMounts(
      [m("data", "/a"), m(`${s.ws}/file`, "/b", true), m("./link/", "/c"), m("../ws/data/.", "/d")],
      s.ws,
      s.socket,
    );
    assert.deepEqual(got, [
      { source: `${s.ws}/data`, target: "/a", readonly: false },
      { source: `${s.ws}/file`, target: "/b", readonly: true },
      { source: `${s.ws}/data`, target: "/c", readonly: false },
      { source: `${s.ws}/data`, target: "/d", readonly: false },
    ]);
    assert.deepEqual(await resolveMounts([], s.ws, s.socket), []);
  } finally {
    await s.cleanup();
  }
});

/**
 * [label, source (ROOT and WS replaced by the scratch paths), engine socket (undefined: the default only),
 * problem, hint]. Each entry is the second of two mounts, so the error must name `mounts[1]` and its line.
 */
const sourcesBad: [string, string, "scratch" | undefined, RegExp, RegExp][] = [
  [
    "a missing relative source",
    "nope",
    "scratch",
    /^"nope" does not exist: no WS\/nope \(relative to the workspace WS\)$/,
    /mkdir -p WS\/nope/,
  ],
  [
    "a missing absolute source",
    "ROOT/gone",
    "scratch",
    /^"ROOT\/gone" does not exist: no ROOT\/gone$/,
    /mkdir/,
  ],
  ["an empty source (the config refuses it first)", "", "scratch", /^must not be empty$/, /needs/],
  ["a ~ path", "~/data", "scratch", /^"~\/data" does not exist: no WS\/~\/data/, /does not expand ~/],
  [
    "a path through a file",
    "file/x",
    "scratch",
    /^"file\/x" cannot be used \(WS\/file\/x\): /,
    /ls -ld WS\/file\/x/,
  ],
  [
    "the host root",
    "/",
    "scratch",
    /^"\/" is the host's root directory: .*undo the sandbox$/,
    /directories the command needs/,
  ],
  ["the host root, as ..", "../../../../../../..", "scratch", /is the host's root directory/, /needs/],
  [
    "the engine's socket",
    "ROOT/run/engine.sock",
    "scratch",
    /is the Docker engine's socket: whoever can connect/,
    /needs/,
  ],
  [
    "a link to the engine's socket",
    "sock-link",
    "scratch",
    /^"sock-link" is the Docker engine's socket/,
    /needs/,
  ],
  [
    "a hard link to the engine's socket",
    "sock-hard",
    "scratch",
    /^"sock-hard" is the Docker engine's socket/,
    /needs/,
  ],
  [
    "the directory holding the engine's socket",
    "../run",
    "scratch",
    /^"..\/run" \(ROOT\/run\) contains the Docker engine's socket ROOT\/run\/engine.sock: .*read-only does not help/,
    /^Mount only what the command needs, from a directory that does not hold ROOT\/run\/engine.sock$/,
  ],
  [
    "an ancestor of the engine's socket",
    "ROOT",
    "scratch",
    /\(ROOT\) contains the Docker engine's socket/,
    /needs/,
  ],
  [
    "any file named docker.sock",
    "ROOT/other/docker.sock",
    "scratch",
    /is named docker.sock, a Docker engine's socket: whoever/,
    /needs/,
  ],
  [
    "a directory holding a docker.sock",
    "ROOT/other",
    "scratch",
    /^"ROOT\/other" \(ROOT\/other\) holds ROOT\/other\/docker.sock, a Docker engine's socket/,
    /does not hold a docker.sock$/,
  ],
  // The default socket is refused whatever engine is in use; /var/run is a link to /run on most systems.
  [
    "the default socket's directory",
    "/var/run",
    undefined,
    /contains the Docker engine's socket \/(var\/)?run\/docker.sock/,
    /needs/,
  ],
  [
    "the default socket's directory, as /run",
    "/run",
    "scratch",
    /contains the Docker engine's socket/,
    /needs/,
  ],
];
for (const [label, source, socket, problem, hint] of sourcesBad) {
  Deno.test(`resolveMounts refuses ${label}`, async () => {
    const s = await scratch();
    try {
      const fill = (x: string) => x.replaceAll("ROOT", s.root).replaceAll("WS", s.ws);
      const fillRe = (re: RegExp) =>
        new RegExp(re.source.replaceAll("ROOT", escape(s.root)).replaceAll("WS", escape(s.ws)));
      const mounts = [m("data"), m(fill(source))];
      await assert.rejects(
        resolveMounts(mounts, s.ws, socket === "scratch" ? s.socket : undefined),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.equal(err.exitCode, 2);
          assert.deepEqual(
            [err.file, err.line, err.column, err.path],
            ["/w/moat.yaml", mounts[1]!.where.line, 5, "mounts[1].source"],
          );
          const prefix = `/w/moat.yaml:${err.line}:5: mounts[1].source: `;
          assert.ok(err.message.startsWith(prefix), err.message);
          assert.match(err.message.slice(prefix.length), fillRe(problem));
          assert.match(err.hint ?? "", fillRe(hint));
          return true;
        },
      );
    } finally {
      await s.cleanup();
    }
  });
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

Deno.test("resolveMounts reports a bad target at its entry before looking at any source", async () => {
  const mounts = [m("/does/not/exist", "/a"), m("/does/not/exist", "/workspace/x")];
  await assert.rejects(resolveMounts(mounts, "/nonexistent-ws", undefined), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.deepEqual([err.line, err.column, err.path], [mounts[1]!.where.line, 5, "mounts[1].target"]);
    assert.match(err.message, /: mounts\[1\]\.target: "\/workspace\/x" is inside \/workspace/);
    return true;
  });
});

Deno.test("resolveMounts refuses /tmp as a target only with read_only", async () => {
  const s = await scratch();
  try {
    const mounts = [m("data", "/tmp")];
    assert.equal((await resolveMounts(mounts, s.ws, s.socket)).length, 1);
    await assert.rejects(
      resolveMounts(mounts, s.ws, s.socket, { readOnly: true }),
      /mounts\[0\]\.target: "\/tmp" is where read_only: true puts a writable tmpfs/,
    );
  } finally {
    await s.cleanup();
  }
});

Deno.test("only targets not inside another mount's target are looked up in the image", () => {
  assert.deepEqual(targetsToProbe(t("/data", "/data/cache", "/etc/passwd", "/database")), [
    "/data",
    "/etc/passwd",
    "/database",
  ]);
});

// [label, mounts (source, target), source kinds, image kinds, index of the offending mount, problem, hint]
const kindCases: [
  string,
  [string, string][],
  PathKind[],
  [string, PathKind][],
  number | undefined,
  RegExp?,
  RegExp?,
][] = [
  ["a file onto a file", [["./passwd", "/etc/passwd"]], ["file"], [["/etc/passwd", "file"]], undefined],
  ["a directory onto a directory", [["./d", "/etc"]], ["directory"], [["/etc", "directory"]], undefined],
  ["anything onto an absent path", [["./d", "/data"]], ["directory"], [["/data", "absent"]], undefined],
  ["a target the engine said nothing about", [["./d", "/x"]], ["directory"], [], undefined],
  [
    "a directory onto a file",
    [["./ok", "/ok"], ["./d", "/etc/passwd"]],
    ["directory", "directory"],
    [["/ok", "absent"], ["/etc/passwd", "file"]],
    1,
    /^"\/etc\/passwd" is a file in the image img, and the source "\.\/d" is a directory: the container runtime cannot mount a directory onto a file$/,
    /^Mount the directory at a path that is not a file in the image, e\.g\. {2}target: \/mnt\/d$/,
  ],
  [
    "a file onto a directory",
    [["./conf/app.ini", "/etc"]],
    ["file"],
    [["/etc", "directory"]],
    0,
    /^"\/etc" is a directory in the image img, and the source "\.\/conf\/app\.ini" is a file: .*a file onto a directory$/,
    /target: \/etc\/app\.ini$/,
  ],
  [
    "the workspace itself onto a file",
    [[".", "/etc/hostname"]],
    ["directory"],
    [["/etc/hostname", "file"]],
    0,
    /a directory onto a file/,
    /target: \/mnt\/data$/,
  ],
];
for (const [label, pairs, sourceKinds, imageKinds, index, problem, hint] of kindCases) {
  Deno.test(`mount kinds: ${label}${index === undefined ? " is fine" : " is refused"}`, () => {
    const mounts = pairs.map(([source, target]) => ({ source, target }));
    const bad = checkMountKinds(mounts, sourceKinds, new Map(imageKinds), "img");
    assert.equal(bad?.index, index);
    if (problem) assert.match(bad?.problem ?? "", problem);
    if (hint) assert.match(bad?.hint ?? "", hint);
  });
}
