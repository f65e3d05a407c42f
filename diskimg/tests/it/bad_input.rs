//! Bad input to the readers: garbage and FIFOs refused with the file named, never a panic or
//! a blocked read.

#[test]
fn inspect_refuses_garbage_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("q.qcow2", b"QFI\xfb\0\0\0\x03garbage".to_vec()),
        ("v.vmdk", b"KDMV\x03\0\0\0short".to_vec()),
        ("g.tar.gz", vec![0x1f, 0x8b, 8, 0, 1, 2, 3]),
        ("odd.raw", vec![0u8; 777]),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = diskimg::inspect::inspect(&path)
            .expect_err(name)
            .to_string();
        assert!(err.contains(name), "{name}: {err}");
    }
}

#[test]
fn inspect_and_the_readers_refuse_a_fifo_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("x.qcow2");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let err = diskimg::inspect::inspect(&fifo).unwrap_err().to_string();
    assert!(
        err.contains("x.qcow2") && err.contains("is a FIFO"),
        "{err}"
    );
    let err = diskimg::ImageFormat::Qcow2
        .open(&fifo)
        .unwrap_err()
        .to_string();
    assert!(err.contains("is a FIFO"), "{err}");
    let err = diskimg::rootfs::open_root_fs(&fifo)
        .unwrap_err()
        .to_string();
    assert!(err.contains("is a FIFO"), "{err}");
}
