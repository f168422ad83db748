/**
 * Find and read the workspace's config file: `moat.yaml`, else `agent.yaml`. This is the I/O edge; the
 * parser (YAML + zod) is imported only when a file exists, so runs without a config never load it.
 *
 * Only a regular file (or a link to one) is read, and at most `MAX_CONFIG_BYTES + 1` bytes of it: opening a
 * named pipe would wait for a writer forever, and a device or a huge file would never end.
 */
import { UsageError } from "../errors.ts";
import { decodeConfig, MAX_CONFIG_BYTES } from "./decode.ts";
import type { LoadedConfig } from "./types.ts";

export const CONFIG_FILES = ["moat.yaml", "agent.yaml"] as const;

export async function loadConfig(workspace: string): Promise<LoadedConfig> {
  for (const name of CONFIG_FILES) {
    const file = `${workspace}/${name}`;
    const bytes = maybeReadConfigFile(file, workspace);
    if (bytes === undefined) continue;
    const text = decodeConfig(bytes, file);
    const { parseConfig } = await import("./parse.ts");
    return { file, config: parseConfig(text, file) };
  }
  return { file: undefined, config: {} };
}

/**
 * The bytes of `file`, or `undefined` when nothing is there. Small and local: synchronous calls, no
 * thread-pool hop on every run. Whatever is there but is not a readable regular file is an error.
 */
function maybeReadConfigFile(file: string, dir: string): Uint8Array | undefined {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw cannotRead(file, err);
  }
  let link: string | undefined;
  if (info.isSymlink) {
    try {
      link = Deno.readLinkSync(file);
      info = Deno.statSync(file);
    } catch (err) {
      if (
        link !== undefined &&
        (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory)
      ) {
        const target = link.startsWith("/") ? link : `${dir}/${link}`;
        throw new UsageError(
          `Config ${file} is a symbolic link to "${link}", which does not exist`,
          `Create ${target}, or remove the link:  rm ${file}`,
        );
      }
      if (link !== undefined && err instanceof Deno.errors.FilesystemLoop) {
        throw new UsageError(
          `Config ${file} is a symbolic link that never reaches a file (a loop): it points to "${link}"`,
          `See where it leads:  ls -l ${file}\nthen point it at a file (ln -sfn FILE ${file}) or remove it (rm ${file})`,
        );
      }
      throw cannotRead(file, err);
    }
  }
  if (!info.isFile) throw notAFile(file, info, link);
  let f: Deno.FsFile;
  try {
    f = Deno.openSync(file, { read: true });
  } catch (err) {
    throw cannotRead(file, err);
  }
  try {
    // Checked again on the open file: the name may have been replaced since.
    const opened = f.statSync();
    if (!opened.isFile) throw notAFile(file, opened, link);
    // One byte past the limit is enough to know the file is too big; a file that grew since the stat (or
    // reports no size) is read on, to that point.
    let buf = new Uint8Array(Math.min(opened.size, MAX_CONFIG_BYTES) + 1);
    let n = 0;
    while (true) {
      if (n === buf.length) {
        if (n > MAX_CONFIG_BYTES) break;
        const bigger = new Uint8Array(Math.min(2 * n, MAX_CONFIG_BYTES + 1));
        bigger.set(buf);
        buf = bigger;
      }
      const got = f.readSync(buf.subarray(n));
      if (got === null) break;
      n += got;
    }
    return buf.subarray(0, n);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw cannotRead(file, err);
  } finally {
    f.close();
  }
}

/** A config that is there but is no regular file: say what it is and what to do about that. */
function notAFile(file: string, info: Deno.FileInfo, link: string | undefined): UsageError {
  const kind = info.isDirectory
    ? "directory"
    : info.isFifo
    ? "named pipe (FIFO)"
    : info.isSocket
    ? "socket"
    : info.isCharDevice
    ? "character device"
    : info.isBlockDevice
    ? "block device"
    : "special file";
  const name = file.slice(file.lastIndexOf("/") + 1);
  return new UsageError(
    link === undefined
      ? `Config ${file} is a ${kind}, not a regular file`
      : `Config ${file} is a symbolic link to a ${kind} ("${link}"), not to a regular file`,
    info.isDirectory
      ? `moat reads its settings from a file of that name. Move the directory away:  mv ${file} ${file}.d\n` +
        `then write the settings into a file ${name}`
      : `moat reads its settings only from a regular file. Move this one away:  mv ${file} ${file}.old\n` +
        `then write the settings into a file ${name}`,
  );
}

function cannotRead(file: string, err: unknown): UsageError {
  return new UsageError(
    `Cannot read config ${file}: ${err instanceof Error ? err.message : String(err)}`,
    err instanceof Deno.errors.PermissionDenied
      ? `Check the file's permissions (and its directory's):  ls -l ${file}`
      : `Check the file:  ls -l ${file}`,
  );
}
