// The frame size limit's default, apart from the codec (runtime/wire/frame-codec.ts re-exports it), so the
// configuration can name it without loading msgpack: `chorus config check` answers sooner.

/** Default largest frame (header + body) a decoder accepts. */
export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;
