//! Tests of [`super::timeline`].

use super::timeline::*;

fn sample() -> Timeline {
    let lines = [
        (
            0.1,
            r#"{"event":"phase","phase":"inputs","state":"started"}"#,
        ),
        (
            2.0,
            r#"{"event":"phase","phase":"inputs","state":"done","seconds":1.9}"#,
        ),
        (2.1, "a tracing line on stderr, not JSON"),
        (
            3.0,
            r#"{"event":"info","message":"nodeimg peak RSS 210 MiB"}"#,
        ),
        (
            10.0,
            r#"{"event":"phase","phase":"boot test","state":"started"}"#,
        ),
        (
            10.5,
            r#"{"event":"phase","phase":"export","state":"started"}"#,
        ),
        (
            11.0,
            r#"{"event":"step","phase":"kubeadm test","step":"kubeadm-init","state":"started"}"#,
        ),
        (
            90.0,
            r#"{"event":"step","phase":"kubeadm test","step":"kubeadm-init","state":"done","seconds":79.0}"#,
        ),
        (
            90.0,
            r#"{"event":"step","phase":"kubeadm test","step":"pod-runs","state":"done","seconds":12.5}"#,
        ),
        (
            100.0,
            r#"{"event":"phase","phase":"boot test","state":"done","seconds":90.0}"#,
        ),
        (
            103.5,
            r#"{"event":"phase","phase":"export","state":"done","seconds":93.0}"#,
        ),
        (104.0, r#"{"event":"bytes","what":"x","done":1,"total":2}"#),
    ];
    Timeline::from_lines(lines)
}

#[test]
fn phases_and_steps_get_arrival_times_and_reported_seconds() {
    let t = sample();
    let names: Vec<_> = t.phases.iter().map(Span::label).collect();
    assert_eq!(names, ["inputs", "boot test", "export"]);
    let inputs = t.phase("inputs").unwrap();
    assert_eq!(
        (inputs.started_at, inputs.ended_at, inputs.seconds),
        (Some(0.1), Some(2.0), Some(1.9))
    );
    assert_eq!(t.phase_secs("export"), Some(93.0));
    assert_eq!(t.phase_secs("seal"), None);
    assert_eq!(t.step_secs("kubeadm test", "kubeadm-init"), Some(79.0));
    // A step whose start was never seen (a batch reporting only ends) still counts.
    assert_eq!(t.step_secs("kubeadm test", "pod-runs"), Some(12.5));
    assert_eq!(
        t.steps_sum("kubeadm test", &["kubeadm-init", "pod-runs"]),
        Some(91.5)
    );
    assert_eq!(
        t.steps_sum("kubeadm test", &["kubeadm-init", "node-ready"]),
        None
    );
    assert_eq!(t.infos_mentioning("PEAK rss"), ["nodeimg peak RSS 210 MiB"]);
}

#[test]
fn the_export_adds_only_what_runs_past_the_boot_test() {
    let t = sample();
    assert_eq!(t.added_after("export", "boot test"), Some(3.5));
    assert_eq!(t.added_after("boot test", "export"), Some(0.0));
    assert_eq!(t.added_after("export", "publish"), None);
}

#[test]
fn failed_and_repeated_spans_are_kept_apart() {
    let t = Timeline::from_lines([
        (
            1.0,
            r#"{"event":"step","phase":"p","step":"s","state":"started"}"#,
        ),
        (
            2.0,
            r#"{"event":"step","phase":"p","step":"s","state":"failed","seconds":1.0}"#,
        ),
        (
            3.0,
            r#"{"event":"step","phase":"p","step":"s","state":"started"}"#,
        ),
        (
            7.0,
            r#"{"event":"step","phase":"p","step":"s","state":"done","seconds":4.0}"#,
        ),
        (
            8.0,
            r#"{"event":"phase","phase":"p","state":"failed","seconds":8.0}"#,
        ),
    ]);
    assert_eq!(t.steps.len(), 2);
    assert_eq!(t.steps[0].state, "failed");
    assert_eq!(t.step_secs("p", "s"), Some(4.0));
    assert_eq!(t.phase_secs("p"), None);
    let slowest: Vec<_> = t.slowest_steps(1).iter().map(|s| s.seconds).collect();
    assert_eq!(slowest, [Some(4.0)]);
}

#[test]
fn peak_rss_from_proc_status() {
    let status = "Name:\tnodeimg\nVmPeak:\t  900000 kB\nVmHWM:\t   123456 kB\nVmRSS:\t 1000 kB\n";
    assert_eq!(vm_hwm_kib(status), Some(123_456));
    assert_eq!(vm_hwm_kib("Name:\tx\n"), None);
}
