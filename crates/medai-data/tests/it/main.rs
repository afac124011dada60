//! Integration tests of medai-data's public API (one test binary, several modules).

mod augment;
mod common;
mod folder;
mod manifest;
mod npz;
mod preprocess;
mod validate;
