//! Fuzz target: RecordBatch v2 walking, validation, decompression and record iteration.
//! Under cargo-fuzz (`--cfg fuzzing`) libFuzzer drives it; otherwise `main` runs the
//! stable in-process mutation fuzzer over the same function (see src/smoke.rs).
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_fuzz::record_batch(data));

#[cfg(not(fuzzing))]
fn main() -> std::process::ExitCode {
    weir_fuzz::smoke::main(
        "record_batch",
        weir_fuzz::record_batch,
        weir_fuzz::smoke::fix_batch_length,
    )
}
