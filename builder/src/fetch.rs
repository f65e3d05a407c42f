//! `nodeimg fetch SPEC [--mirror URL] [--cache DIR] [--timeout D] [--deadline D]
//! [--refresh-packages]`: the command
//! line of [`inputs::fetch`], the only step that uses the network. Downloads show progress
//! ([`crate::report::DownloadProgress`]); each artifact fetched is logged, and the lock's
//! artifacts are listed at the end, with the base image's full SHA-256 and what pinned it.

use std::sync::Arc;

use anyhow::Result;
use inputs::cache::Cache;
use inputs::fetch::plan::Mirror;
use inputs::fetch::{Limits, Options};

use crate::args::FetchArgs;
use crate::report::human;

/// `nodeimg fetch`.
pub fn run(args: &FetchArgs) -> Result<()> {
    let spec = inputs::spec::load(&args.spec)?;
    let mirror = match args.mirror.as_deref().or(spec.fetch.mirror.as_deref()) {
        Some(m) => Some(Mirror::new(m).map_err(|e| anyhow::anyhow!("--mirror: {e}"))?),
        None => None,
    };
    let options = Options {
        cache: Cache::new(
            args.cache
                .clone()
                .unwrap_or_else(inputs::cache::default_dir),
        ),
        mirror,
        limits: Limits {
            timeout: args.timeout,
            deadline: args.deadline,
        },
        watch: Arc::new(crate::report::DownloadProgress::new()),
        refresh_packages: args.refresh_packages,
    };
    let fetched = inputs::fetch::fetch(&spec, &options, &mut |a| {
        tracing::info!("{}: {} sha256 {}", a.name, human(a.size), &a.sha256[..12]);
    })?;

    for reference in &fetched.test_images.not_available {
        eprintln!("not available: {reference}");
    }
    for a in &fetched.artifacts {
        println!(
            "  {:<24} {:<10} {:>11}  sha256 {}",
            a.name,
            a.kind.as_str(),
            human(a.size),
            &a.sha256[..12]
        );
    }
    if let Some(base) = fetched
        .artifacts
        .iter()
        .find(|a| a.kind == inputs::lock::Kind::BaseImage)
    {
        println!(
            "base image sha256 {} (pinned by {})",
            base.sha256, fetched.base_pinned_by
        );
    }
    if spec.packages.fetch {
        println!(
            "distro packages: {}",
            if fetched.packages_resolved {
                "resolved against the archive"
            } else {
                "the lock's set, resolved from the same inputs (--refresh-packages resolves again)"
            }
        );
    }
    println!(
        "lock: {} ({} artifacts; {} downloaded, {} of data)",
        fetched.lock_path.display(),
        fetched.artifacts.len(),
        fetched.downloaded_artifacts,
        human(fetched.downloaded_bytes)
    );
    Ok(())
}
