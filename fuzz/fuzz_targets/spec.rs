//! The lane spec loader over arbitrary YAML and TOML: never a panic, never unbounded work
//! (libFuzzer's `-timeout` catches that), and a spec it accepts builds.
#![no_main]

use graylane_core::spec::LaneSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (bool, &str)| {
    let (toml, src) = input;
    let loaded = if toml {
        LaneSpec::from_toml_str(src)
    } else {
        LaneSpec::from_yaml_str(src)
    };
    if let Ok(spec) = loaded
        // Validation passed, so what runs is built from it; only the token key, read from the
        // environment, may be missing.
        && let Err(e) = spec.compile()
    {
        assert!(
            e.path.starts_with("trust.token"),
            "a validated spec failed to build: {e}"
        );
    }
});
