/** Network operations (swagger NetworkCreate, NetworkDelete, NetworkList, NetworkInspect). */
import { EngineApiError } from "../errors.ts";
import type { EngineHttp } from "./transport.ts";
import type { NetworkCreateBody, NetworkInspect } from "./types.ts";

/**
 * `POST /networks/create`: the new network's id. Bounded like a container's create (`slow`): the engine
 * takes longer to set a bridge up on a busy host.
 */
export async function networkCreate(http: EngineHttp, body: NetworkCreateBody): Promise<string> {
  const res = await http.call<{ Id: string }>("POST", "/networks/create", { json: body, slow: true });
  return res.body.Id;
}

/** `GET /networks/{id}`; `undefined` when the engine has no such network. */
export async function maybeNetworkInspect(http: EngineHttp, id: string): Promise<NetworkInspect | undefined> {
  try {
    return (await http.call<NetworkInspect>("GET", `/networks/${encodeURIComponent(id)}`)).body;
  } catch (err) {
    if (err instanceof EngineApiError && err.isNotFound) return undefined;
    throw err;
  }
}

/** `DELETE /networks/{id}`. A network that is gone already is fine. */
export async function networkRemove(http: EngineHttp, id: string): Promise<void> {
  try {
    await http.call("DELETE", `/networks/${encodeURIComponent(id)}`, { slow: true });
  } catch (err) {
    if (err instanceof EngineApiError && err.isNotFound) return;
    throw err;
  }
}

/** `GET /networks?filters={"label":[…]}`: every network carrying all the given labels. */
export async function networkList(http: EngineHttp, labels: string[]): Promise<NetworkInspect[]> {
  const res = await http.call<NetworkInspect[]>("GET", "/networks", {
    query: { filters: labels.length ? { label: labels } : undefined },
  });
  return res.body;
}
