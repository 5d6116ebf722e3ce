//! `graylane manifests`: write the generated manifests, or (`--check`) compare a directory with
//! them.

use graylane_mesh::generate;

use super::load;
use crate::args::ManifestsArgs;
use crate::manifest_dir::drift;
use crate::{Fail, bad_input, problem};

/// Writes one file per service into `--out`, or with `--check` writes nothing and fails (exit 1)
/// on drift, listing each differing file on stderr.
pub(crate) fn run(args: &ManifestsArgs) -> Result<(), Fail> {
    let spec = load(&args.spec)?;
    let rendered = generate(&spec).render();
    let out = &args.out;
    if args.check {
        let drift = drift(out, &rendered)?;
        if drift.is_empty() {
            println!("{}: up to date ({} files)", out.display(), rendered.len());
            return Ok(());
        }
        for d in &drift {
            eprintln!("{d}");
        }
        return Err(problem(format!(
            "{} differs from the spec: run `graylane manifests --spec {} --out {}`",
            out.display(),
            args.spec.display(),
            out.display()
        )));
    }
    for path in write_all(&spec, out)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Writes the manifests of `spec` into `out` (created if missing); the paths written.
pub(crate) fn write_all(
    spec: &graylane_core::spec::LaneSpec,
    out: &std::path::Path,
) -> Result<Vec<std::path::PathBuf>, Fail> {
    std::fs::create_dir_all(out).map_err(|e| bad_input(format!("{}: {e}", out.display())))?;
    let mut written = Vec::new();
    for (name, yaml) in &generate(spec).render() {
        let path = out.join(name);
        std::fs::write(&path, yaml).map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
        written.push(path);
    }
    Ok(written)
}
