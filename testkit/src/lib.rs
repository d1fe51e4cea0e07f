//! Test-only helpers that start real peers. (Being written.)
