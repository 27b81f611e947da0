/** A JSON value: what the schema's `JSON` scalar carries (e.g. a Knoten's design content). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
/** A JSON object: what `content` fields hold. */
export type JsonObject = { [key: string]: JsonValue };
