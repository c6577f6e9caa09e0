/**
 * HTTP/2 SETTINGS parameters (RFC 9113 §6.5): identifiers, initial values, and the parser that validates
 * a received SETTINGS payload as §6.5 and §6.5.2 require before any value is applied.
 *
 * Parameters are applied in order and a later value of the same parameter replaces an earlier one
 * (§6.5.3), so a parse yields the final value of each parameter present; unknown identifiers are ignored
 * (§6.5.2). Values are validated all together: a frame with one bad value is rejected whole, as a
 * connection error.
 */
import type { H2ErrorName } from "./h2-error-codes.js";
import { MAX_MAX_FRAME_SIZE, MAX_WINDOW_SIZE, MIN_MAX_FRAME_SIZE } from "./h2-frame-types.js";

export type H2SettingName =
  | "headerTableSize"
  | "enablePush"
  | "maxConcurrentStreams"
  | "initialWindowSize"
  | "maxFrameSize"
  | "maxHeaderListSize";

/** Wire identifier of each parameter (§6.5.2). */
export const H2_SETTING_IDS: Readonly<Record<H2SettingName, number>> = {
  headerTableSize: 0x1,
  enablePush: 0x2,
  maxConcurrentStreams: 0x3,
  initialWindowSize: 0x4,
  maxFrameSize: 0x5,
  maxHeaderListSize: 0x6,
};

const NAME_BY_ID: ReadonlyMap<number, H2SettingName> = new Map(
  (Object.keys(H2_SETTING_IDS) as H2SettingName[]).map((name) => [H2_SETTING_IDS[name], name]),
);

/** One side's settings; "no limit" is Infinity. */
export type H2Settings = Readonly<Record<H2SettingName, number>>;

/** Values in force before a peer's first SETTINGS frame (§6.5.2). */
export const H2_INITIAL_SETTINGS: H2Settings = {
  headerTableSize: 4096,
  enablePush: 1,
  maxConcurrentStreams: Infinity,
  initialWindowSize: 65_535,
  maxFrameSize: MIN_MAX_FRAME_SIZE,
  maxHeaderListSize: Infinity,
};

/** The parameters one SETTINGS frame carried, each with its last value. */
export type H2SettingsUpdate = Partial<Record<H2SettingName, number>>;

/** Octets per parameter: 16-bit identifier, 32-bit value (§6.5.1). */
export const SETTINGS_ENTRY_LENGTH = 6;

export type SettingsParseResult =
  | { readonly ok: true; readonly update: H2SettingsUpdate }
  | {
      readonly ok: false;
      /** The connection error to send in GOAWAY. */
      readonly code: Extract<H2ErrorName, "FRAME_SIZE_ERROR" | "PROTOCOL_ERROR" | "FLOW_CONTROL_ERROR">;
      readonly reason: string;
    };

/**
 * Parses and validates the payload of a SETTINGS frame without ACK: `src[offset, offset + length)`.
 * `sender` is the peer's role: a server may not enable push at all (§6.5.2), so a client (Fulcrum towards
 * an upstream worker) passes "server".
 */
export function parseSettingsPayload(
  src: Uint8Array,
  offset: number,
  length: number,
  sender: "client" | "server" = "client",
): SettingsParseResult {
  if (length % SETTINGS_ENTRY_LENGTH !== 0) {
    return { ok: false, code: "FRAME_SIZE_ERROR", reason: "SETTINGS length is not a multiple of 6" };
  }
  const update: { -readonly [K in H2SettingName]?: number } = {};
  const view = new DataView(src.buffer, src.byteOffset + offset, length);
  for (let p = 0; p < length; p += SETTINGS_ENTRY_LENGTH) {
    const name = NAME_BY_ID.get(view.getUint16(p));
    if (name === undefined) continue;
    const value = view.getUint32(p + 2);
    switch (name) {
      case "enablePush":
        if (value > 1) return { ok: false, code: "PROTOCOL_ERROR", reason: "ENABLE_PUSH is not 0 or 1" };
        if (value === 1 && sender === "server") {
          return { ok: false, code: "PROTOCOL_ERROR", reason: "a server sent ENABLE_PUSH 1" };
        }
        break;
      case "initialWindowSize":
        if (value > MAX_WINDOW_SIZE) {
          return { ok: false, code: "FLOW_CONTROL_ERROR", reason: "INITIAL_WINDOW_SIZE above 2^31-1" };
        }
        break;
      case "maxFrameSize":
        if (value < MIN_MAX_FRAME_SIZE || value > MAX_MAX_FRAME_SIZE) {
          return { ok: false, code: "PROTOCOL_ERROR", reason: "MAX_FRAME_SIZE outside 16384..16777215" };
        }
        break;
      default:
        break;
    }
    update[name] = value;
  }
  return { ok: true, update };
}

/** `current` with an update applied. */
export function applySettings(current: H2Settings, update: H2SettingsUpdate): H2Settings {
  return { ...current, ...update };
}
