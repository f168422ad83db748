/**
 * The labels moat puts on the containers it creates (and scripts/setup.sh on the images it builds): one name
 * per key, so a key is never spelled twice. docs/reference/cli.md ("Containers and labels") lists them.
 */
export const LABELS = {
  /** `true` on every container moat creates: the filter that finds them all. */
  managed: "dev.moat.managed",
  runId: "dev.moat.run-id",
  name: "dev.moat.name",
  workspace: "dev.moat.workspace",
  sandbox: "dev.moat.sandbox",
  runtime: "dev.moat.runtime",
  version: "dev.moat.version",
  /** `true` with `--keep`. */
  keep: "dev.moat.keep",
  ownerPid: "dev.moat.owner-pid",
  bootId: "dev.moat.boot-id",
  /** The id of the MOAT_HOME that made the container (lib/store/home_id.ts). */
  home: "dev.moat.home",
  /** A short-lived probe container: `passwd`, `paths` or `doctor`. */
  probe: "dev.moat.probe",
  /**
   * On a run's network and relay made ahead of the run (lib/run/standby.ts): when the relay stops unless a
   * run took it, in ms since the epoch.
   */
  standby: "dev.moat.standby",
  /** On images: `setup` for those scripts/setup.sh built. */
  builtBy: "dev.moat.built-by",
} as const;

/** The container-list filter for every container moat created. */
export const MANAGED_FILTER = `${LABELS.managed}=true`;

/** The value of label `key` on a container or image (`undefined` when absent). */
export function labelOf(
  item: { Labels?: Record<string, string> | null },
  key: keyof typeof LABELS,
): string | undefined {
  return item.Labels?.[LABELS[key]];
}
