//! `nodeimg build`: options from the command line, the pipeline (or with `--dry-run` only its
//! plan), the closing summary.

use anyhow::Result;

use super::plan::{KubeadmPlan, Plan};
use super::{BuildOptions, build, load_and_plan};
use crate::args::BuildArgs;
use crate::report::{Mode, Reporter};

/// `nodeimg build`: checks the options, runs the pipeline, prints the summary.
pub fn run(args: &BuildArgs) -> Result<()> {
    args.guest.check()?;
    let opts = BuildOptions {
        spec: args.spec.clone(),
        out: args.out.clone(),
        cache: args
            .cache
            .clone()
            .unwrap_or_else(::inputs::cache::default_dir),
        accel: args.guest.accel,
        memory_mib: args.guest.memory,
        cpus: args.guest.cpus,
        keep_going: args.keep_going,
        no_kubeadm_test: args.no_kubeadm_test,
        conformance: args.conformance.map(|c| c.scope()),
        source_date_epoch: crate::args::source_date_epoch()?,
    };
    if args.dry_run {
        return dry_run(&opts, args.json);
    }
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
    // The wall time: phases may overlap (the export runs alongside the boot test).
    let total = reporter.elapsed().as_secs_f64();
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

/// `nodeimg build --dry-run`: the inputs checked, the plan rendered and checked, then printed;
/// nothing is written and no VM starts.
fn dry_run(opts: &BuildOptions, json: bool) -> Result<()> {
    let (inputs, plan) = load_and_plan(opts)?;
    let spec = &inputs.spec;
    if json {
        let mut v = plan.to_json();
        v["image"] = spec.image.name.clone().into();
        v["distro"] = spec.image.distro.clone().into();
        println!("{v}");
    } else {
        print!(
            "{}",
            render_plan(&spec.image.name, &spec.image.distro, &plan)
        );
    }
    Ok(())
}

/// The plan as `--dry-run` prints it: a summary line, then each phase and its steps with
/// their timeouts.
fn render_plan(name: &str, distro: &str, plan: &Plan) -> String {
    let phases = plan.phases();
    let steps: usize = phases.iter().map(|p| p.steps.len()).sum();
    let mut out = format!(
        "plan of {name} ({distro}): inputs checked, {} host files are regular files, {} phases, {steps} steps, every script parses (sh -n)\n",
        plan.host_files.len(),
        phases.len(),
    );
    for phase in &phases {
        out.push_str(&format!("{} ({} steps)\n", phase.name, phase.steps.len()));
        for s in &phase.steps {
            // Step names can come from the spec: shown escaped.
            let shown = crate::untrusted::escape(&s.name);
            out.push_str(&format!("  {shown:<48} {:>5}s\n", s.timeout.as_secs()));
        }
    }
    if let KubeadmPlan::Skipped(why) = &plan.kubeadm {
        out.push_str(&format!("{why}\n"));
    }
    out
}
