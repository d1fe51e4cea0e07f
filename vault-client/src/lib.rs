//! Vault client (being written).
