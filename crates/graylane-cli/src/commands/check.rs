//! `graylane check`: validate a spec and its manifests (the generated ones, or a directory):
//! upstream schemas, the mesh cross-checks, and drift from the spec.

use graylane_mesh::model::Resource;
use graylane_mesh::{check, generate, validate_upstream};

use super::{load, print_json};
use crate::args::CheckArgs;
use crate::{Fail, manifest_dir, problem};

#[derive(serde::Serialize)]
struct CheckReport {
    ok: bool,
    problems: Vec<String>,
}

/// Prints every problem found (or a one-line summary when there is none); exit 1 on problems.
pub(crate) fn run(args: &CheckArgs) -> Result<(), Fail> {
    let spec = load(&args.spec)?;
    let rendered = generate(&spec).render();
    let mut problems = Vec::new();
    let (files, resources): (Vec<(String, String)>, Vec<Resource>) = match &args.manifests {
        Some(dir) => {
            let read = manifest_dir::read(dir)?;
            problems.extend(manifest_dir::drift(dir, &rendered)?);
            (
                read.iter()
                    .map(|f| (f.path.display().to_string(), f.src.clone()))
                    .collect(),
                read.into_iter().flat_map(|f| f.docs).collect(),
            )
        }
        None => (
            rendered.clone(),
            generate(&spec).resources().cloned().collect(),
        ),
    };
    for (file, src) in &files {
        for (doc, kind, error) in validate_upstream(src) {
            problems.push(format!("{file}: document {doc} ({kind}): {error}"));
        }
    }
    problems.extend(check(&resources).iter().map(ToString::to_string));
    if args.json {
        print_json(&CheckReport {
            ok: problems.is_empty(),
            problems: problems.clone(),
        })?;
    } else if problems.is_empty() {
        println!(
            "{}: ok ({} lanes, {} services, {} manifest documents)",
            args.spec.display(),
            spec.lanes.len(),
            spec.services.len(),
            resources.len()
        );
    } else {
        for p in &problems {
            println!("{p}");
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problem(format!("{} problem(s) found", problems.len())))
    }
}
