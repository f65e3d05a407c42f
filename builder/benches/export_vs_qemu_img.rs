//! `cargo bench -p builder --bench export_vs_qemu_img`: our one-pass export against the
//! reference pipeline (qemu-img convert to qcow2, vpc fixed force_size, vmdk streamOptimized,
//! and `tar --format=oldgnu -Sczf` for GCE) on the same realistic disk, in one run.
//!
//! The disk: 4 GiB GPT with an ext4 root filled with host files (/usr/lib/x86_64-linux-gnu and
//! /usr/share, about 1.3 GiB), cached under the fixtures cache; plus a 20 GiB copy with the
//! same data for the virtual-size scaling ratio. Prints times, ratios, sizes and peak RSS.
//! Every reference command is followed by `sync FILE`, since nodeimg fsyncs its artifacts.
//! Set NODEIMG_BENCH_GIB to change the base size.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list; this bench is run only by `cargo bench`.
    }
    for tool in ["qemu-img", "tar", "mkfs.ext4"] {
        if Command::new(tool).arg("--version").output().is_err() {
            println!("SKIP: {tool} not found; install qemu-utils, tar, e2fsprogs");
            return;
        }
    }
    let gib: u64 = std::env::var("NODEIMG_BENCH_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let cache = fixtures::cache_dir().join("bench");
    std::fs::create_dir_all(&cache).expect("cache dir");
    let disk = cache.join(format!("bench-{gib}g.raw"));
    if !disk.exists() {
        println!("building the benchmark disk {} ...", disk.display());
        let tmp = disk.with_extension("tmp");
        fixtures::ext4::ext4_disk(
            &tmp,
            gib << 30,
            &[
                PathBuf::from("/usr/lib/x86_64-linux-gnu"),
                PathBuf::from("/usr/share"),
            ],
        )
        .expect("bench disk");
        std::fs::rename(&tmp, &disk).expect("rename bench disk");
    }
    let big = cache.join(format!("bench-{}g.raw", gib * 5));
    if !big.exists() {
        let tmp = big.with_extension("tmp");
        run("cp", &["--sparse=always", s(&disk), s(&tmp)]);
        run("truncate", &["-s", &format!("{}G", gib * 5), s(&tmp)]);
        std::fs::rename(&tmp, &big).expect("rename big disk");
    }
    let work = tempfile::Builder::new()
        .prefix("nodeimg-bench")
        .tempdir_in(&cache)
        .expect("work dir");
    let work = work.path();
    let allocated = Command::new("du")
        .args(["-B1", s(&disk)])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    println!(
        "disk: {} ({} GiB virtual, {} bytes allocated)",
        disk.display(),
        gib,
        allocated
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or("?")
    );
    warm(&disk);

    // The reference pipeline, one command per format.
    let gce_dir = work.join("gce-src");
    std::fs::create_dir_all(&gce_dir).expect("gce dir");
    std::fs::hard_link(&disk, gce_dir.join("disk.raw")).expect("hard link disk.raw");
    let refs: Vec<(&str, Duration, PathBuf)> = vec![
        timed_ref(
            "qcow2",
            work.join("ref.qcow2"),
            &["convert", "-f", "raw", "-O", "qcow2"],
            &disk,
        ),
        timed_ref(
            "vhd",
            work.join("ref.vhd"),
            &[
                "convert",
                "-f",
                "raw",
                "-O",
                "vpc",
                "-o",
                "subformat=fixed,force_size",
            ],
            &disk,
        ),
        timed_ref(
            "vmdk",
            work.join("ref.vmdk"),
            &[
                "convert",
                "-f",
                "raw",
                "-O",
                "vmdk",
                "-o",
                "subformat=streamOptimized",
            ],
            &disk,
        ),
        {
            let out = work.join("ref.tar.gz");
            let t = Instant::now();
            run(
                "tar",
                &[
                    "--format=oldgnu",
                    "-Sczf",
                    s(&out),
                    "-C",
                    s(&gce_dir),
                    "disk.raw",
                ],
            );
            ("gce", t.elapsed(), out)
        },
    ];
    let ref_total: Duration = refs.iter().map(|r| r.1).sum();

    // Ours: each format alone, then all together in one pass.
    let single = |fmt: &str| {
        let (t, _) = ours(&disk, &work.join(format!("ours-{fmt}")), fmt);
        t
    };
    let ours_qcow2 = single("qcow2");
    let ours_vhd = single("vhd");
    let ours_vmdk = single("aws");
    let ours_gce = single("gce");
    let (all, rss) = ours(&disk, &work.join("ours-all"), "raw,qcow2,vhd,ova,gce,aws");
    let (all_big, rss_big) = ours(&big, &work.join("ours-big"), "raw,qcow2,vhd,ova,gce,aws");

    println!();
    println!(
        "{:<34} {:>9} {:>9} {:>7}",
        "format", "qemu-img", "nodeimg", "ratio"
    );
    for ((name, reference, _), mine) in refs.iter().zip([ours_qcow2, ours_vhd, ours_vmdk, ours_gce])
    {
        println!(
            "{:<34} {:>8.2}s {:>8.2}s {:>7.2}",
            name,
            reference.as_secs_f64(),
            mine.as_secs_f64(),
            mine.as_secs_f64() / reference.as_secs_f64()
        );
    }
    println!(
        "{:<34} {:>8.2}s {:>8.2}s {:>7.2}  (target ≤ 0.40)",
        "all formats, one pass vs sum",
        ref_total.as_secs_f64(),
        all.as_secs_f64(),
        all.as_secs_f64() / ref_total.as_secs_f64()
    );
    println!(
        "{:<34} {:>9} {:>8.2}s {:>7.2}  (target ≤ 1.20)",
        format!("{}x virtual size, same data", 5),
        "",
        all_big.as_secs_f64(),
        all_big.as_secs_f64() / all.as_secs_f64()
    );
    println!(
        "peak RSS: {} MiB ({} MiB on the 5x disk)  (target ≤ 256)",
        rss / 1024,
        rss_big / 1024
    );
    println!();
    println!(
        "{:<34} {:>14} {:>14} {:>7}",
        "compressed size", "reference", "nodeimg", "ratio"
    );
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let ours_all = work.join("ours-all");
    for (name, reference, mine) in [
        (
            "vmdk (streamOptimized)",
            &refs[2].2,
            ours_all.join("bench.vmdk"),
        ),
        ("gce tar.gz", &refs[3].2, ours_all.join("bench.tar.gz")),
    ] {
        let (r, m) = (size(reference), size(&mine));
        println!(
            "{name:<34} {r:>14} {m:>14} {:>7.3}  (target ≤ 1.05)",
            m as f64 / r as f64
        );
    }
    let qcow2_ref = size(&refs[0].2);
    let qcow2_ours = size(&ours_all.join("bench.qcow2"));
    println!(
        "{:<34} {qcow2_ref:>14} {qcow2_ours:>14} {:>7.3}",
        "qcow2 (uncompressed)",
        qcow2_ours as f64 / qcow2_ref as f64
    );
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn run(cmd: &str, args: &[&str]) {
    let status = Command::new(cmd)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(status.success(), "{cmd} {args:?} failed");
}

/// Reads the disk once so every contender starts from a warm page cache.
fn warm(disk: &Path) {
    let _ = Command::new("cat")
        .arg(disk)
        .stdout(std::process::Stdio::null())
        .status();
}

fn timed_ref(
    name: &'static str,
    out: PathBuf,
    args: &[&str],
    disk: &Path,
) -> (&'static str, Duration, PathBuf) {
    let t = Instant::now();
    let mut all: Vec<&str> = args.to_vec();
    all.push(s(disk));
    all.push(s(&out));
    run("qemu-img", &all);
    run("sync", &[s(&out)]);
    (name, t.elapsed(), out)
}

/// Runs `nodeimg export`; returns its wall time and the peak RSS (KiB) of our children so far.
fn ours(disk: &Path, out: &Path, formats: &str) -> (Duration, i64) {
    let t = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_nodeimg"))
        .args([
            "export",
            s(disk),
            "--out",
            s(out),
            "--name",
            "bench",
            "--formats",
            formats,
            "--json",
        ])
        .env("NODEIMG_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("nodeimg");
    let elapsed = t.elapsed();
    assert!(
        status.success(),
        "nodeimg export --formats {formats} failed"
    );
    let rss = getrusage(UsageWho::RUSAGE_CHILDREN)
        .map(|u| u.max_rss())
        .unwrap_or(0);
    (elapsed, rss)
}
