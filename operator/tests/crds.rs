//! The committed `crds/` must be what the Rust types generate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

#[test]
fn committed_crds_are_fresh() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crds");
    let crds = samsa_operator::crd::all_crds();
    assert_eq!(
        crds.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(),
        vec![
            "kafkaclusters.samsa.dev.yaml",
            "kafkatopics.samsa.dev.yaml",
            "kafkausers.samsa.dev.yaml"
        ]
    );
    let mut stale = Vec::new();
    for (file, crd) in &crds {
        let want = samsa_operator::crd::crd_yaml(crd).unwrap();
        match std::fs::read_to_string(dir.join(file)) {
            Ok(have) if have == want => {}
            Ok(_) => stale.push(format!("{file} differs")),
            Err(e) => stale.push(format!("{file}: {e}")),
        }
    }
    assert!(
        stale.is_empty(),
        "crds/ is stale: run make crds ({})",
        stale.join(", ")
    );
}
