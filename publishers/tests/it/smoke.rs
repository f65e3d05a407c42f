//! The target modules' tests against local emulators live beside this file, one module per
//! target.

#[test]
fn a_target_string_round_trips() {
    let t: publishers::Target = "oci:127.0.0.1:5000/n/i:1".parse().unwrap();
    assert_eq!(t.kind(), "oci");
}
