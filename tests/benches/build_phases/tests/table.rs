//! Tests of [`super::table`].

use super::table::*;
use super::timeline::Timeline;

fn timeline(lines: &[(f64, &str, f64)]) -> Timeline {
    let json: Vec<(f64, String)> = lines
        .iter()
        .map(|(at, phase, secs)| {
            (
                *at,
                format!(r#"{{"event":"phase","phase":"{phase}","state":"done","seconds":{secs}}}"#),
            )
        })
        .collect();
    Timeline::from_lines(json.iter().map(|(a, l)| (*a, l.as_str())))
}

#[test]
fn ratios_and_verdicts() {
    assert_eq!(ratio(Some(3.0), Some(2.0)), Some(1.5));
    assert_eq!(ratio(Some(3.0), Some(0.0)), None);
    assert_eq!(ratio(None, Some(2.0)), None);
    let t = |value| Target {
        what: "x".into(),
        value,
        unit: "x",
        limit: 1.1,
    };
    assert_eq!(t(Some(1.1)).verdict(), "PASS");
    assert_eq!(t(Some(1.2)).verdict(), "MISS");
    assert_eq!(t(None).verdict(), "n/a");
    let text = targets(&[t(Some(0.5)), t(None)]);
    assert!(
        text.contains("0.50") && text.contains("PASS") && text.contains("n/a"),
        "{text}"
    );
}

#[test]
fn the_phase_table_lines_up_old_and_new_and_marks_what_is_missing() {
    let old = timeline(&[
        (10.0, "boot", 80.0),
        (200.0, "provision", 200.0),
        (210.0, "bom", 9.0),
    ]);
    let new = timeline(&[
        (10.0, "boot", 60.0),
        (100.0, "provision", 100.0),
        (101.0, "publish", 1.0),
    ]);
    let text = phases(Some(&old), &new, (Some(700.0), Some(350.0)));
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[1].starts_with("boot") && lines[1].contains("0.75"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("provision") && lines[2].contains("0.50"),
        "{text}"
    );
    assert!(
        lines[3].starts_with("publish") && lines[3].contains("n/a"),
        "{text}"
    );
    assert!(
        lines[4].starts_with("bom") && lines[4].contains("9.0"),
        "{text}"
    );
    assert!(
        lines[5].starts_with("whole build") && lines[5].contains("0.50"),
        "{text}"
    );
    let alone = phases(None, &new, (None, Some(350.0)));
    assert!(alone.contains("n/a"));
}

#[test]
fn steps_and_segments_say_na_when_empty() {
    assert!(slowest_steps("t", &Timeline::default(), 3).contains("n/a"));
    assert!(segments("t", &[]).contains("n/a"));
    let text = segments("t", &[("init-done".into(), 89.75)]);
    assert!(
        text.contains("init-done") && text.contains("89.8s"),
        "{text}"
    );
}
