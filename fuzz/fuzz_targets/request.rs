//! Fuzz target: request framing and every supported request decoder.
//! Under cargo-fuzz (`--cfg fuzzing`) libFuzzer drives it; otherwise `main` runs the
//! stable in-process mutation fuzzer over the same function (see src/smoke.rs).
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_fuzz::request(data));

#[cfg(not(fuzzing))]
fn main() -> std::process::ExitCode {
    weir_fuzz::smoke::main("request", weir_fuzz::request, weir_fuzz::smoke::fix_frame_prefix)
}
