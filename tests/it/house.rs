//! The house's floors (DESIGN.md): imports only point down. Read from the source, so a
//! change that makes an arrow run back up fails here, not in a review months later.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// `crate::<module>` paths a folder's non-test code uses, among `forbidden`.
fn arrows_up(folder: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(folder);
    let mut found = Vec::new();
    for file in rust_files(&root) {
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for m in forbidden {
            if code.contains(&format!("crate::{m}::")) || code.contains(&format!("crate::{m};")) {
                found.push(format!("{} uses crate::{m}", file.display()));
            }
        }
    }
    found
}

#[test]
fn the_meta_edge_knows_nothing_above_it() {
    let up = arrows_up(
        "whatsapp",
        &["inbox", "contacts", "intake", "api", "privacy", "setup", "ops"],
    );
    assert!(up.is_empty(), "whatsapp/ is the edge below the features: {up:#?}");
}

#[test]
fn web_plumbing_imports_no_feature() {
    let up = arrows_up(
        "web",
        &[
            "inbox", "contacts", "whatsapp", "intake", "api", "app", "privacy", "setup", "jobs", "ops",
        ],
    );
    assert!(up.is_empty(), "web/ is plumbing below the features: {up:#?}");
}

#[test]
fn feature_logic_does_not_see_the_app_state() {
    // Handlers (routes, api, views) may take AppState; services, repos and workers not.
    let mut up = Vec::new();
    for folder in ["inbox", "contacts", "privacy", "jobs", "whatsapp"] {
        up.extend(arrows_up(folder, &["app", "intake"]).into_iter().filter(|f| {
            !f.contains("/routes") && !f.contains("routes.rs") && !f.ends_with("webhook.rs uses crate::app")
        }));
    }
    assert!(
        up.is_empty(),
        "feature logic takes narrow handles, not AppState: {up:#?}"
    );
}
