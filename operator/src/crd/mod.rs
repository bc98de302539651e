//! The custom resources of group `samsa.dev`, version `v1alpha1`: their Rust types (the single
//! source of the CRD YAML in `crds/`), schema defaults, CEL rules, and pure `validate()`
//! functions mirroring the rules for the reconcilers and unit tests. Nothing here talks to
//! Kubernetes or Kafka.

mod cluster;
mod common;
mod security;
mod topic;
mod user;

pub use cluster::*;
pub use common::*;
pub use security::*;
pub use topic::*;
pub use user::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// API group of every Samsa resource.
pub const GROUP: &str = "samsa.dev";
/// API version of every Samsa resource.
pub const VERSION: &str = "v1alpha1";

/// Every CRD with the file name it is written to under `crds/`, in a stable order.
pub fn all_crds() -> Vec<(String, CustomResourceDefinition)> {
    [KafkaCluster::crd(), KafkaTopic::crd(), KafkaUser::crd()]
        .into_iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().unwrap_or_default();
            (format!("{name}.yaml"), crd)
        })
        .collect()
}

/// Renders a CRD as the YAML committed under `crds/`.
pub fn crd_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_yaml_ng::Error> {
    let body = serde_yaml_ng::to_string(crd)?;
    Ok(format!(
        "# Generated from operator/src/crd by `make crds` (samsa-operator crds). Do not edit.\n{body}"
    ))
}
