// What the AMF0 and AMF3 decoders produce and the bounds both enforce. They
// decode bytes from the network, so nesting and reference tables are capped.

export type AmfValue = number | boolean | string | null | undefined | Date | AmfValue[] | AmfObject;
export interface AmfObject {
  [key: string]: AmfValue;
}

/** Nesting deeper than this is no command a real client sends. */
export const AMF_MAX_DEPTH = 32;
/** Objects, arrays, strings and traits referencable in one message; bounds the reference tables. */
export const AMF_MAX_REFERENCES = 65_536;
