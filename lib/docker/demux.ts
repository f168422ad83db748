/**
 * The engine's multiplexed stream (`Tty: false`): each frame is an 8-byte header
 * `[type, 0, 0, 0, size u32 big-endian]` and `size` payload bytes (swagger ContainerAttach "Stream format",
 * moby api/pkg/stdcopy). Frames straddle reads and HTTP chunks at any byte, one read can hold several
 * frames, and type 0 is a real type (stdin: a zero type byte still starts a frame), so the state is "how
 * much of the current frame is still owed", never "is there a header here".
 */

/** 0 stdin (written on stdout), 1 stdout, 2 stderr, 3 the daemon's own error output (Systemerr). */
export type StreamType = 0 | 1 | 2 | 3;

/** One payload piece. `data` may be a view into the caller's buffer: consume it before the next push. */
export interface Frame {
  stream: StreamType;
  data: Uint8Array;
}

/** The stream carried a type byte outside 0–3: it is not multiplexed, or it is corrupt. */
export class DemuxError extends Error {
  override name = "DemuxError";
}

/**
 * Incremental demuxer. `push` returns the payload pieces completed or continued by these bytes; a frame
 * split across pushes comes out as several pieces of the same stream, in order, without copying the
 * payload. Only a partial 8-byte header is copied and kept between pushes.
 */
export class Demuxer {
  #header = new Uint8Array(8);
  #headerHave = 0;
  #stream: StreamType = 1;
  #owed = 0;

  /** True when the bytes so far end exactly on a frame boundary. */
  get atBoundary(): boolean {
    return this.#headerHave === 0 && this.#owed === 0;
  }

  push(bytes: Uint8Array): Frame[] {
    const out: Frame[] = [];
    let i = 0;
    while (i < bytes.byteLength) {
      if (this.#owed > 0) {
        const n = Math.min(this.#owed, bytes.byteLength - i);
        out.push({ stream: this.#stream, data: bytes.subarray(i, i + n) });
        this.#owed -= n;
        i += n;
        continue;
      }
      const need = 8 - this.#headerHave;
      const n = Math.min(need, bytes.byteLength - i);
      this.#header.set(bytes.subarray(i, i + n), this.#headerHave);
      this.#headerHave += n;
      i += n;
      if (this.#headerHave < 8) break;
      this.#headerHave = 0;
      const h = this.#header;
      const type = h[0]!;
      if (type > 3 || h[1] !== 0 || h[2] !== 0 || h[3] !== 0) {
        throw new DemuxError(
          `unrecognized stream header ${Array.from(h, (b) => b.toString(16).padStart(2, "0")).join(" ")}`,
        );
      }
      this.#stream = type as StreamType;
      this.#owed = ((h[4]! << 24) >>> 0) + (h[5]! << 16) + (h[6]! << 8) + h[7]!;
    }
    return out;
  }

  /**
   * Call at end of stream. Like the engine's own `stdcopy`, an end inside a frame is not an error — what
   * arrived was already delivered — but it is reported so a caller can say the output was cut short.
   */
  end(): { truncated: boolean } {
    const truncated = this.#headerHave > 0 || this.#owed > 0;
    this.#headerHave = 0;
    this.#owed = 0;
    return { truncated };
  }
}

/** Build one frame (used by tests and the fake engine). */
export function encodeFrame(stream: StreamType, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + payload.byteLength);
  out[0] = stream;
  new DataView(out.buffer).setUint32(4, payload.byteLength, false);
  out.set(payload, 8);
  return out;
}
