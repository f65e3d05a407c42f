//! `shell::quote` through a real shell: the word must come back byte for byte.

use std::time::Duration;

use child_process::Command;

use distros::shell::{quote, quote_words};

fn via_sh(word: &str) -> String {
    let out = Command::new("/bin/sh", Duration::from_secs(30))
        .arg("-c")
        .arg(format!("printf %s {}", quote(word)))
        .run_status()
        .expect("/bin/sh runs");
    assert!(out.status.success(), "{word:?}: {:?}", out);
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn hostile_strings_round_trip() {
    for s in [
        "a'b; rm -rf /",
        "",
        "'",
        "''",
        "'\\''",
        "$(touch /tmp/nodeimg-pwned) `id` ${HOME} $HOME",
        "a\nb\tc",
        "*",
        "~root",
        "-n",
        "\\",
        "\"dq\" 'sq'",
        "ünïcødé ✓",
        "!#&|<>;()",
    ] {
        assert_eq!(via_sh(s), s, "{s:?}");
    }
}

#[test]
fn positional_argument_round_trip() {
    // The form the brief names: sh -c 'printf %s "$1"' with the word as $1, built as one
    // command line from quoted words (what a remote shell receives).
    let hostile = "a'b; rm -rf /";
    let line = format!(
        "/bin/sh -c {} sh {}",
        quote("printf %s \"$1\""),
        quote(hostile)
    );
    let out = Command::new("/bin/sh", Duration::from_secs(30))
        .arg("-c")
        .arg(&line)
        .run_status()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), hostile);
}

#[test]
fn words_stay_separate() {
    let line = format!(
        "for w in {}; do printf '[%s]' \"$w\"; done",
        quote_words(["a b", "c'd", ""])
    );
    let out = Command::new("/bin/sh", Duration::from_secs(30))
        .arg("-c")
        .arg(&line)
        .run_status()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "[a b][c'd][]");
}
