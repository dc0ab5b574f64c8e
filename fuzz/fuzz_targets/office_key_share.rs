#![no_main]
//! See `cairn_fuzz::targets::office_key_share`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cairn_fuzz::targets::office_key_share(data));
