/** An HTTPS server of a test's own on loopback, for `name`, with a certificate of the test's CA. */
import { makeLeaf, type RunCa } from "../lib/net/x509.ts";

export async function httpsUpstream(
  ca: RunCa,
  name: string,
  handler: (req: Request) => Response | Promise<Response>,
): Promise<{ port: number; close(): Promise<void> }> {
  const leaf = await makeLeaf(ca, name);
  const ac = new AbortController();
  const server = Deno.serve(
    {
      hostname: "127.0.0.1",
      port: 0,
      cert: leaf.certPem,
      key: leaf.keyPem,
      signal: ac.signal,
      onListen() {},
    },
    handler,
  );
  return { port: server.addr.port, close: () => (ac.abort(), server.finished) };
}
