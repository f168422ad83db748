/** output.bin frames built by hand, independent of lib/store/records.ts (whose writer is under test). */
const enc = new TextEncoder();

/** One frame: 16-byte header (stream, 3 zeros, size u32 BE, time ms f64 BE), then the payload. */
export function outFrame(stream: number, payload: string | Uint8Array, timeMs: number): Uint8Array {
  const data = typeof payload === "string" ? enc.encode(payload) : payload;
  const out = new Uint8Array(16 + data.byteLength);
  const dv = new DataView(out.buffer);
  out[0] = stream;
  dv.setUint32(4, data.byteLength, false);
  dv.setFloat64(8, timeMs, false);
  out.set(data, 16);
  return out;
}
