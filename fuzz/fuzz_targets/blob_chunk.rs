#![no_main]
//! See `cairn_fuzz::targets::blob_chunk`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cairn_fuzz::targets::blob_chunk(data));
