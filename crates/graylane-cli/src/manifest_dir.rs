//! A directory of manifests: its YAML files, parsed, and how it differs from what the spec
//! generates. `manifests --check` and `check` compare; `check` and `route` read.

use std::path::{Path, PathBuf};

use graylane_mesh::model::{Resource, from_yaml};

use crate::{Fail, bad_input};

/// One manifest file: its path, its documents, and its text (for the upstream schema check).
pub(crate) struct ManifestFile {
    pub(crate) path: PathBuf,
    pub(crate) docs: Vec<Resource>,
    pub(crate) src: String,
}

/// Files in `dir` that differ from `rendered`: missing, changed, or extra `.yaml` files.
pub(crate) fn drift(dir: &Path, rendered: &[(String, String)]) -> Result<Vec<String>, Fail> {
    let mut problems = Vec::new();
    for (name, yaml) in rendered {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(existing) if existing == *yaml => {}
            Ok(_) => problems.push(format!(
                "{}: differs from the generated manifests",
                path.display()
            )),
            Err(_) => problems.push(format!("{}: missing", path.display())),
        }
    }
    for entry in yaml_files(dir)? {
        let name = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !rendered.iter().any(|(n, _)| *n == name) {
            problems.push(format!("{}: not generated from the spec", entry.display()));
        }
    }
    Ok(problems)
}

/// Every document of every YAML file in `dir`, parsed (unknown kinds and fields are errors).
pub(crate) fn read(dir: &Path) -> Result<Vec<ManifestFile>, Fail> {
    yaml_files(dir)?
        .into_iter()
        .map(|path| {
            let src = std::fs::read_to_string(&path)
                .map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
            let docs =
                from_yaml(&src).map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
            Ok(ManifestFile { path, docs, src })
        })
        .collect()
}

/// The `.yaml` and `.yml` files directly in `dir`, sorted.
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, Fail> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| bad_input(format!("{}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}
