#![no_main]

use libfuzzer_sys::fuzz_target;
use polo_fuzz::polo_formats::fuzzing::{Target, run};

fuzz_target!(|data: &[u8]| run(Target::Import, data));
