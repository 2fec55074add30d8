//! Part 10 file meta information (PS3.10 §7.1): read and write the header.
