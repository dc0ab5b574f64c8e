#![no_main]
//! See `cairn_fuzz::targets::pull_page`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cairn_fuzz::targets::pull_page(data));
