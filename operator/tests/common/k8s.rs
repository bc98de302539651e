//! A throwaway Kubernetes control plane for tests: etcd and kube-apiserver as plain processes
//! on loopback ports in 31000-31999 (no nodes: objects are stored, pods never run). The
//! binaries come from `$SAMSA_K8S_BIN_DIR`, else `<repo>/e2e/.bin` (`e2e/build-binaries.sh`).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;

use super::{free_port, wait_for};

/// The running control plane; processes are killed on drop.
pub struct ControlPlane {
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub client: Client,
    children: Vec<Child>,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn bin_dir() -> PathBuf {
    std::env::var_os("SAMSA_K8S_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/.bin"))
}

/// Why the control plane cannot start here, if it cannot.
pub fn missing() -> Option<String> {
    let dir = bin_dir();
    for b in ["etcd", "kube-apiserver"] {
        if !dir.join(b).exists() {
            return Some(format!(
                "no {b} in {} (set SAMSA_K8S_BIN_DIR or run e2e/build-binaries.sh)",
                dir.display()
            ));
        }
    }
    if Command::new("openssl").arg("version").output().is_err() {
        return Some("no openssl to make the service-account key".into());
    }
    None
}

/// Starts etcd and kube-apiserver and returns a client once the API server is ready.
pub async fn start() -> ControlPlane {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bins = bin_dir();
    let key = d.join("sa.key");
    let public = d.join("sa.pub");
    assert!(Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&key)
        .arg("2048")
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success());
    assert!(Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success());
    std::fs::write(
        d.join("tokens.csv"),
        "test-token,admin,admin,system:masters\n",
    )
    .unwrap();

    let (client_port, peer_port, api_port) = (free_port(), free_port(), free_port());
    let mut children = Vec::new();
    let log = |name: &str| std::fs::File::create(d.join(name)).unwrap();
    children.push(
        Command::new(bins.join("etcd"))
            .arg("--data-dir")
            .arg(d.join("etcd"))
            .arg(format!(
                "--listen-client-urls=http://127.0.0.1:{client_port}"
            ))
            .arg(format!(
                "--advertise-client-urls=http://127.0.0.1:{client_port}"
            ))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"
            ))
            .arg(format!(
                "--initial-cluster=default=http://127.0.0.1:{peer_port}"
            ))
            .stdout(Stdio::null())
            .stderr(log("etcd.log"))
            .spawn()
            .expect("start etcd"),
    );
    children.push(
        Command::new(bins.join("kube-apiserver"))
            .arg(format!("--etcd-servers=http://127.0.0.1:{client_port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--secure-port={api_port}"))
            .arg(format!("--cert-dir={}", d.join("certs").display()))
            .arg("--service-account-issuer=https://kubernetes.default.svc")
            .arg(format!("--service-account-key-file={}", public.display()))
            .arg(format!(
                "--service-account-signing-key-file={}",
                key.display()
            ))
            .arg(format!(
                "--token-auth-file={}",
                d.join("tokens.csv").display()
            ))
            .arg("--authorization-mode=RBAC")
            .arg("--service-cluster-ip-range=10.96.0.0/24")
            .stdout(Stdio::null())
            .stderr(log("apiserver.log"))
            .spawn()
            .expect("start kube-apiserver"),
    );
    let kubeconfig = d.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster: {{server: \"https://127.0.0.1:{api_port}\", insecure-skip-tls-verify: true}}\nusers:\n- name: admin\n  user: {{token: test-token}}\ncontexts:\n- name: t\n  context: {{cluster: t, user: admin, namespace: default}}\ncurrent-context: t\n"
        ),
    )
    .unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&kubeconfig).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = Client::try_from(config).unwrap();
    let probe = client.clone();
    let plane = ControlPlane {
        dir,
        kubeconfig,
        client,
        children,
    };
    wait_for(
        "kube-apiserver is ready",
        Duration::from_secs(90),
        async || {
            let req = http::Request::get("/readyz").body(Vec::new()).unwrap();
            probe
                .request_text(req)
                .await
                .is_ok_and(|t| t.trim() == "ok")
        },
    )
    .await;
    // The default namespace and service account machinery need no controller-manager for
    // what the tests do; wait for the namespace the API server creates itself.
    wait_for(
        "namespace default exists",
        Duration::from_secs(30),
        async || {
            let api: kube::Api<k8s_openapi::api::core::v1::Namespace> =
                kube::Api::all(probe.clone());
            api.get_opt("default").await.is_ok_and(|n| n.is_some())
        },
    )
    .await;
    plane
}

/// The operator process of a test, killed on drop.
pub struct Operator(pub std::process::Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A control plane with the operator's CRDs installed and established, or `None` (the test
/// skips) when the Kubernetes binaries are missing and SAMSA_SKIP_K8S_TESTS=1.
pub async fn plane_with_crds() -> Option<ControlPlane> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Api, Patch, PatchParams};

    if let Some(why) = missing() {
        if std::env::var("SAMSA_SKIP_K8S_TESTS").as_deref() == Ok("1") {
            eprintln!("skipped (SAMSA_SKIP_K8S_TESTS=1): {why}");
            return None;
        }
        panic!("{why}; or set SAMSA_SKIP_K8S_TESTS=1 to skip this test");
    }
    let plane = start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(plane.client.clone());
    for (_, crd) in samsa_operator::crd::all_crds() {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(
            &name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap();
        super::wait_for(
            &format!("CRD {name} is established"),
            std::time::Duration::from_secs(30),
            async || {
                crds.get(&name).await.is_ok_and(|c| {
                    c.status.and_then(|s| s.conditions).is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c.type_ == "Established" && c.status == "True")
                    })
                })
            },
        )
        .await;
    }
    Some(plane)
}
