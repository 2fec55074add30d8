//! DIMSE message framing (PS3.7): command sets, fragmentation, reassembly.
