//! The bodies of the subcommands without a module of their own (`export`, `verify`,
//! `inspect`, `audit`, `bom diff`): call the libraries, print results.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use exporters::{ExportOptions, Format};

use crate::args::{AuditArgs, BomDiffArgs, ExportArgs, InspectArgs, VerifyArgs};
use crate::exit::bad_input;
use crate::report::{Mode, TaskProgress};

/// `nodeimg export`.
pub fn export(args: &ExportArgs) -> Result<()> {
    let name = match &args.name {
        Some(n) => n.clone(),
        None => default_name(&args.disk)?,
    };
    let mut formats: Vec<Format> = args.formats.clone();
    formats.sort();
    formats.dedup();
    let mut properties = Vec::new();
    for p in &args.properties {
        let Some((k, v)) = p.split_once('=') else {
            bail!("--property {p:?}: expected KEY=VALUE")
        };
        if k.is_empty() {
            bail!("--property {p:?}: the key is empty");
        }
        properties.push((k.to_string(), v.to_string()));
    }
    let options = ExportOptions {
        name,
        formats,
        firmware: args.firmware,
        compress: args.compress,
        pad: args.pad,
        source_date_epoch: crate::args::source_date_epoch()?,
        properties,
        background: false,
    };
    let progress = TaskProgress::new(Mode::detect(args.json), "export");
    // Removes only what this export wrote, and only once it holds the --out lock: never
    // another run's files. A previous complete export there stays as it was.
    crate::interrupt::on_interrupt(exporters::export::abandon_in_progress);
    let report = exporters::export(&args.disk, &args.out, &options, &progress)
        .with_context(|| format!("exporting {}", args.disk.display()))?;
    if args.json {
        println!("{}", report.manifest.to_json().trim_end());
        return Ok(());
    }
    if let Some(pad) = &report.pad {
        println!(
            "padded {} → {} bytes{}",
            pad.original_size,
            pad.padded_size,
            if pad.gpt_relocated {
                " (backup GPT moved to the new end)"
            } else {
                " (no GPT)"
            }
        );
    }
    println!(
        "content sha256 {}  ({} bytes virtual)",
        report.manifest.content_sha256, report.manifest.virtual_size
    );
    for a in &report.manifest.artifacts {
        println!(
            "  {:<7} {:>14}  {}  {}",
            a.format.name(),
            a.size,
            &a.sha256[..16],
            a.file
        );
    }
    println!("manifest: {}", report.manifest_path.display());
    Ok(())
}

/// `nodeimg verify`.
pub fn verify(args: &VerifyArgs) -> Result<()> {
    let progress = TaskProgress::new(Mode::detect(args.json), "verify");
    let report = exporters::verify::verify(&args.dir, &progress)
        .with_context(|| format!("verifying {}", args.dir.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    for a in &report.artifacts {
        println!(
            "ok  {:<7} {}: {}",
            a.format.name(),
            a.file,
            a.checks.join("; ")
        );
    }
    println!(
        "verified {} artifacts of {}: content sha256 {}",
        report.artifacts.len(),
        report.name,
        report.content_sha256
    );
    Ok(())
}

/// `nodeimg inspect`.
pub fn inspect(args: &InspectArgs) -> Result<()> {
    let found = diskimg::inspect::inspect(&args.file)
        .with_context(|| format!("inspecting {}", args.file.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(());
    }
    println!("file:           {}", found.path.display());
    println!("format:         {}", found.format);
    println!("virtual size:   {} bytes", found.virtual_size);
    println!("file size:      {} bytes", found.file_size);
    println!("allocated:      {} bytes", found.allocated_bytes);
    match &found.gpt {
        None if !found.warnings.is_empty() => println!("partitions:     none shown"),
        None => println!("partitions:     no GPT"),
        Some(gpt) => {
            println!("disk GUID:      {}", gpt.disk_guid);
            println!(
                "usable LBAs:    {}..={} (backup header at LBA {})",
                gpt.first_usable_lba, gpt.last_usable_lba, gpt.backup_lba
            );
            for p in &gpt.partitions {
                println!(
                    "  {:>3}  {:>12} {:>12}  {:>14} bytes  {}  \"{}\"",
                    p.number,
                    p.first_lba,
                    p.last_lba,
                    p.size,
                    p.type_guid,
                    crate::untrusted::escape(&p.name)
                );
            }
        }
    }
    for warning in &found.warnings {
        println!("warning:        {warning}");
    }
    Ok(())
}

fn default_name(disk: &Path) -> Result<String> {
    let stem = disk.file_stem().and_then(|s| s.to_str()).with_context(|| {
        format!(
            "{}: cannot derive a name from this path; pass --name",
            disk.display()
        )
    })?;
    Ok(stem.to_string())
}

/// `nodeimg audit`: 0 when every check passes, 1 when one fails, 2 when the disk (or the
/// JUnit file) cannot be read or written, with one `error:` line.
pub fn audit(args: &AuditArgs) -> ExitCode {
    let options = crate::audit::AuditOptions {
        build_user: args.build_user.clone(),
        var_log_limit: args.var_log_limit,
    };
    let report = match crate::audit::audit_disk(&args.disk, &options) {
        Ok(r) => r,
        Err(e) => return bad_input(e),
    };
    print!("{}", report.render_text());
    if let Some(path) = &args.junit
        && let Err(e) = crate::junit::write(path, &report.junit_suite(), &report.junit_cases())
    {
        return bad_input(format_args!("writing JUnit report {}: {e}", path.display()));
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `nodeimg bom diff`: 0 when the two BOMs are identical, 1 when they differ, 2 when one
/// cannot be read.
pub fn bom_diff(args: &BomDiffArgs) -> ExitCode {
    let load = |p: &PathBuf| crate::documents::load_bom(&crate::documents::bom_path(p));
    let (a, b) = match (load(&args.a), load(&args.b)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return bad_input(e),
    };
    let d = bom::diff::diff(&a, &b);
    if args.json {
        print!("{}", d.to_json());
    } else {
        print!("{}", crate::bom_diff::render(&d, &args.a, &args.b));
    }
    if d.is_identical() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
