use super::*;

fn item(name: &'static str, script: &'static str, secs: u64, stop: bool) -> BatchItem<'static> {
    BatchItem {
        name,
        script,
        timeout: Duration::from_secs(secs),
        stop_on_failure: stop,
    }
}

/// Feeds `stream` in chunks of `chunk` bytes and gathers the events, joining adjacent output
/// of the same item.
fn read(stream: &[u8], chunk: usize) -> Vec<Event> {
    let mut r = Reader::new();
    let mut events = Vec::new();
    for c in stream.chunks(chunk) {
        events.extend(r.feed(c));
    }
    events.extend(r.finish());
    let mut joined: Vec<Event> = Vec::new();
    for e in events {
        if let (
            Some(Event::Output { index: a, bytes }),
            Event::Output {
                index: b,
                bytes: more,
            },
        ) = (joined.last_mut(), &e)
            && a == b
        {
            bytes.extend_from_slice(more);
            continue;
        }
        joined.push(e);
    }
    joined
}

fn output(events: &[Event], want: usize) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Output {
                index: Some(i),
                bytes,
            } if *i == want => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .collect()
}

fn finished(events: &[Event]) -> Vec<(usize, i32)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Finished { index, exit, .. } => Some((*index, *exit)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_reader_gives_each_item_exactly_its_output_whatever_the_chunks() {
    let stream = b"\n\x1enodeimg-batch begin 0 10.00\nabc\n\n\x1enodeimg-batch end 0 0 12.50\n\
                   \n\x1enodeimg-batch begin 1 12.50\nno newline \x1enodeimg-batch end 9 9\n\x1enot a marker\n\
                   last\n\x1enodeimg-batch end 1 3 13.00\n";
    for chunk in [1, 2, 3, 7, 64, stream.len()] {
        let events = read(stream, chunk);
        assert_eq!(finished(&events), [(0, 0), (1, 3)], "chunk {chunk}");
        assert_eq!(output(&events, 0), "abc\n", "chunk {chunk}");
        assert_eq!(
            output(&events, 1),
            "no newline \x1enodeimg-batch end 9 9\n\x1enot a marker\nlast",
            "chunk {chunk}"
        );
        let Some(Event::Finished { seconds, .. }) = events
            .iter()
            .find(|e| matches!(e, Event::Finished { index: 0, .. }))
        else {
            panic!("no end of item 0");
        };
        assert!((seconds - 2.5).abs() < 1e-9, "{seconds}");
    }
}

#[test]
fn output_outside_every_item_and_a_cut_stream_are_kept() {
    let events = read(b"sudo: a password is required\n", 5);
    assert_eq!(
        events,
        [Event::Output {
            index: None,
            bytes: b"sudo: a password is required\n".to_vec()
        }]
    );
    let mut r = Reader::new();
    let events = r.feed(b"\n\x1enodeimg-batch begin 4 1.0\npartial\n\x1enodeimg");
    assert_eq!(r.current(), Some(4));
    assert_eq!(
        events,
        [
            Event::Started { index: 4 },
            Event::Output {
                index: Some(4),
                bytes: b"partial".to_vec()
            }
        ]
    );
    assert_eq!(
        r.finish(),
        [Event::Output {
            index: Some(4),
            bytes: b"\n\x1enodeimg".to_vec()
        }]
    );
}

fn run_sh(script: &str) -> Vec<Event> {
    let out = child_process::Command::new("/bin/sh", Duration::from_secs(60))
        .arg("-c")
        .arg(script)
        .arg("nodeimg-batch")
        .run_status()
        .unwrap();
    read(&out.stdout, 5)
}

/// The rendered batch under a real sh: every item runs as its own script with its own exit,
/// stderr joins stdout in order, a slow item is stopped by `timeout`, a failing item marked
/// stop-on-failure ends the batch and a check-like failing item does not.
#[test]
fn a_real_batch_runs_items_in_order_and_stops_where_told() {
    let items = [
        item(
            "one",
            "#!/bin/sh\nset -eu\necho out; echo err >&2\n",
            30,
            true,
        ),
        item("two", "#!/bin/sh\necho \"zeroth=$0\"\nexit 3\n", 30, false),
        item("slow", "sleep 20\n", 1, false),
        item("stdin", "cat; echo \"read $?\"", 30, false),
        item("fails", "echo failing; false", 30, true),
        item("never", "echo never", 30, true),
    ];
    let events = run_sh(&render(&items, 1));
    assert_eq!(
        finished(&events),
        [(0, 0), (1, 3), (2, TIMED_OUT), (3, 0), (4, 1)]
    );
    assert_eq!(output(&events, 0), "out\nerr\n");
    assert_eq!(output(&events, 1), "zeroth=nodeimg-two\n");
    assert_eq!(output(&events, 3), "read 0\n");
    assert_eq!(output(&events, 4), "failing\n");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Started { index: 5 }))
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Output { index: None, .. })),
        "{events:?}"
    );
}

/// A script with quotes, `$(...)`, a here-document and `$HOME` in single quotes runs unchanged.
#[test]
fn scripts_go_in_unchanged() {
    let script = "x='it'\\''s'\necho \"$x $(echo sub)\" '$HOME'\ncat <<'NODEIMG_SCRIPT_0_END'\ninner\nNODEIMG_SCRIPT_0_END\n";
    let events = run_sh(&render(&[item("q", script, 30, true)], 1));
    assert_eq!(finished(&events), [(0, 0)]);
    assert_eq!(output(&events, 0), "it's sub $HOME\ninner\n");
}

#[test]
fn batches_are_split_below_the_command_line_limit() {
    let big: &'static str = Box::leak("echo 'x'\n".repeat(3000).into_boxed_str());
    let items: Vec<BatchItem<'static>> = (0..10).map(|_| item("big", big, 30, true)).collect();
    let parts = split(&items);
    assert!(parts.len() > 1, "{}", parts.len());
    assert_eq!(parts.iter().map(|p| p.len()).sum::<usize>(), 10);
    for p in &parts {
        assert!(remote_command(&render(p, 2)).len() <= MAX_COMMAND);
    }
    let small = [item("a", "true", 30, true), item("b", "true", 30, true)];
    assert_eq!(split(&small).len(), 1);
    assert!(total_timeout(&small) > Duration::from_secs(60));
}

/// In lanes: every item runs (side by side), each item's output arrives whole and attributed
/// to it, exits and timeouts as in one lane; a stop-on-failure item forces one lane.
#[test]
fn a_batch_in_lanes_runs_every_item_and_keeps_outputs_apart() {
    let items = [
        item(
            "a",
            "for i in 1 2 3; do echo a$i; sleep 0.1; done",
            30,
            false,
        ),
        item(
            "b",
            "for i in 1 2 3; do echo b$i >&2; sleep 0.1; done; exit 5",
            30,
            false,
        ),
        item("slow", "sleep 20", 1, false),
        item("c", "printf 'no newline'", 30, false),
        item("d", "echo d", 30, false),
    ];
    let script = render(&items, 2);
    assert!(script.contains(" 2>&1 &\n"), "{script}");
    let events = run_sh(&script);
    let mut ends = finished(&events);
    ends.sort_unstable();
    assert_eq!(ends, [(0, 0), (1, 5), (2, TIMED_OUT), (3, 0), (4, 0)]);
    assert_eq!(output(&events, 0), "a1\na2\na3\n");
    assert_eq!(output(&events, 1), "b1\nb2\nb3\n");
    assert_eq!(output(&events, 3), "no newline");
    assert_eq!(output(&events, 4), "d\n");
    let slow = events.iter().find_map(|e| match e {
        Event::Finished {
            index: 2, seconds, ..
        } => Some(*seconds),
        _ => None,
    });
    assert!(slow.is_some_and(|s| (0.9..5.0).contains(&s)), "{slow:?}");
    let stop = [item("a", "true", 30, true), item("b", "true", 30, false)];
    assert!(!render(&stop, 2).contains(" &\n"));
}

/// A free lane takes the next item no lane has taken: the first item waits until the last one
/// has run, which only ends when another lane runs every later item (items dealt round-robin
/// would leave the last one, the fifth, queued behind the waiting first one in lane one until
/// the first gives up). Each item runs exactly once.
#[test]
fn a_free_lane_takes_the_next_item_and_each_item_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("last-ran");
    let wait: &'static str = Box::leak(
        format!(
            "n=0; while [ ! -f '{}' ]; do n=$((n + 1)); [ $n -lt 200 ] || exit 9; sleep 0.05; done",
            flag.display()
        )
        .into_boxed_str(),
    );
    let last: &'static str =
        Box::leak(format!("echo last; : > '{}'", flag.display()).into_boxed_str());
    let mut items = vec![item("waits", wait, 30, false)];
    items.extend((0..3).map(|_| item("short", "echo short", 30, false)));
    items.push(item("last", last, 30, false));
    let events = run_sh(&render(&items, 2));
    let mut ends = finished(&events);
    ends.sort_unstable();
    assert_eq!(
        ends,
        (0..5).map(|i| (i, 0)).collect::<Vec<_>>(),
        "{events:?}"
    );
    for i in 0..5 {
        let starts = events
            .iter()
            .filter(|e| matches!(e, Event::Started { index } if *index == i))
            .count();
        assert_eq!(starts, 1, "item {i}: {events:?}");
    }
    assert_eq!(output(&events, 4), "last\n");
}
