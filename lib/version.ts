/** moat's version. Bumped by hand with each release; shown by `moat --version` and in container labels. */
export const VERSION = "0.1.0";
