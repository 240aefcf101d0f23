//! Integration tests live in `tests/`; this library is intentionally empty
//! so that all of them build into one test binary.
