//! CKKS canonical-embedding encoder (owned by the encoder work).
