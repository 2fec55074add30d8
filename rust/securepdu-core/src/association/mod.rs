//! The association state machine of PS3.8 §9.2, sans-IO.
