/** The validated config (`moat.yaml`). Every field is optional; absent means "use the default". */
export interface MoatConfig {
  name?: string;
  image?: string;
  /** Always a list here: a string in the file becomes `["/bin/sh", "-c", string]`. */
  command?: string[];
  env?: Record<string, string>;
  sandbox?: "gvisor" | "none";
  /** Name of the gVisor runtime registered with Docker (default `runsc`). */
  runtime?: string;
}

/** A loaded config and where it came from (`undefined` file: no config). */
export interface LoadedConfig {
  file: string | undefined;
  config: MoatConfig;
}
