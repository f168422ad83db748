/** Assertions the test files share. */
import assert from "node:assert/strict";

/** Assert that `p` rejects with an error of `cls`, and return it for further checks. */
export async function rejection<T extends Error>(
  p: Promise<unknown>,
  cls: new (...args: never[]) => T,
): Promise<T> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${err}`);
    return err;
  }
  assert.fail(`expected a ${cls.name}, but the call succeeded`);
}
