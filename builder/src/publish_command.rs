//! `nodeimg publish OUTDIR --to TARGET`: refuse a target whose export is missing, verify the
//! whole output (as `nodeimg verify`), only then hand it to the target's publisher, and write
//! what was made into `publish.json` atomically, last. The output directory is locked for the
//! run (the lock `nodeimg export` takes), so two publishes never race on the record.

use anyhow::{Context, Result};
use exporters::dir_lock::{DirLock, EXPORT_LOCK_FILE};
use publishers::record::RECORD_FILE;
use publishers::{Job, PublishRecord, Published, Source, Target};

use crate::args::PublishArgs;
use crate::report::{Mode, TaskProgress};

/// Runs `nodeimg publish`.
pub fn run(args: &PublishArgs) -> Result<()> {
    let dir = &args.dir;
    let source = Source::open(dir).with_context(|| format!("reading {}", dir.display()))?;
    let target = &args.to;
    for format in target.required_formats() {
        if !source.formats().contains(format) {
            return Err(source.not_exported(&target.to_string(), *format).into());
        }
    }
    let _lock = DirLock::acquire(dir, EXPORT_LOCK_FILE)?;
    let progress = TaskProgress::new(Mode::detect(args.json), "verify");
    let report = exporters::verify::verify(dir, &progress).with_context(|| {
        format!(
            "verifying {} before publishing: nothing was sent",
            dir.display()
        )
    })?;
    drop(progress);
    if !args.json {
        eprintln!(
            "verified {} artifacts of {}: content sha256 {}",
            report.artifacts.len(),
            report.name,
            report.content_sha256
        );
    }
    if *target == Target::Vsphere {
        return print_vsphere(&source);
    }
    let job = Job {
        source: &source,
        stage: args.stage.as_deref(),
    };
    let published = publishers::publish(&job, target)
        .with_context(|| format!("publishing {} to {target}", dir.display()))?;
    let mut record =
        PublishRecord::load_or_new(dir, &source.manifest.name, source.content_sha256())?;
    record.upsert(published.clone());
    let path = dir.join(RECORD_FILE);
    ::inputs::atomic::write_atomic(&path, record.to_json().as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&published)?);
    } else {
        print_published(&published, &path);
    }
    Ok(())
}

fn print_published(p: &Published, record: &std::path::Path) {
    let verb = if p.reused {
        "already there, nothing uploaded"
    } else {
        "published"
    };
    println!(
        "{}{}: {verb}",
        p.target,
        p.stage
            .as_deref()
            .map(|s| format!(" (stage {s})"))
            .unwrap_or_default()
    );
    for (k, v) in &p.created {
        println!("  {k}: {v}");
    }
    if !p.next_steps.is_empty() {
        println!("next:");
        for step in &p.next_steps {
            println!("  {step}");
        }
    }
    println!("record: {}", record.display());
}

/// vSphere has no API nodeimg calls: the export's commands, printed as they are.
fn print_vsphere(source: &Source) -> Result<()> {
    let path = source.dir.join(publishers::VSPHERE_INSTRUCTIONS);
    let text = diskimg::input_file::read_bounded_string(&path, 1 << 20, "instructions")
        .with_context(|| format!("reading {}", path.display()))?;
    println!("# nodeimg does not upload to vSphere itself (no API it can call here); run:");
    print!("{text}");
    Ok(())
}
