//! Support for graylane's end-to-end tests: the lane spec every test topology uses.

use graylane::spec::LaneSpec;

/// The reference spec from `docs/examples/lane-spec.yaml`, with an inline token key so tests do
/// not depend on the environment.
pub fn reference_spec() -> LaneSpec {
    let mut spec = LaneSpec::from_yaml_str(include_str!("../../docs/examples/lane-spec.yaml"))
        .expect("the reference spec in docs/ must stay valid");
    if let Some(token) = spec.trust.token.as_mut() {
        token.key = Some("e2e test key, 16 bytes or more".into());
        token.key_env = "GRAYLANE_E2E_KEY_UNSET".into();
    }
    spec
}
