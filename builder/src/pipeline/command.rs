//! `nodeimg build`: options from the command line, the pipeline, the closing summary.

use anyhow::{Result, bail};

use super::{BuildOptions, build};
use crate::build::report::{Mode, Reporter};
use crate::cli::BuildArgs;

/// `nodeimg build`: checks the options, runs the pipeline, prints the summary.
pub fn run(args: &BuildArgs) -> Result<()> {
    if args.cpus == 0 {
        bail!("--cpus must be at least 1");
    }
    if args.memory < 1024 {
        bail!("--memory {}: a node needs at least 1024 MiB", args.memory);
    }
    let opts = BuildOptions {
        spec: args.spec.clone(),
        out: args.out.clone(),
        cache: args.cache.clone().unwrap_or_else(crate::cache::default_dir),
        accel: args.accel,
        memory_mib: args.memory,
        cpus: args.cpus,
        keep_going: args.keep_going,
        no_kubeadm_test: args.no_kubeadm_test,
        source_date_epoch: crate::commands::source_date_epoch()?,
    };
    let reporter = Reporter::new(Mode::detect(args.json));
    let built = build(&opts, &reporter);
    reporter.finish();
    let built = built?;
    let timings = reporter
        .timings()
        .iter()
        .map(|(p, d)| format!("{p} {:.1}s", d.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(", ");
    let total: f64 = reporter
        .timings()
        .iter()
        .map(|(_, d)| d.as_secs_f64())
        .sum();
    if args.json {
        println!(
            "{}",
            serde_json::json!({"event": "built", "dir": built.dir, "checks": built.results.len(), "seconds": total})
        );
    } else {
        println!(
            "built {} ({} checks passed) in {total:.0}s: {timings}",
            built.dir.display(),
            built.results.len()
        );
        println!("artifacts: {}", built.dir.display());
    }
    Ok(())
}
