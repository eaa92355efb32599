#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rehearse::fuzz::event_args(data));
