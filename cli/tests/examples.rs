//! Every file under `examples/` as a user applies it: MCPServers pass `validate` (the deliberately invalid
//! ones fail it), every annotated Deployment passes `inject`, each topology folder is complete and
//! consistent (Secrets, endpoint ConfigMap with a server and a CA, Service to the sidecar, MCPServer `url` to that Service), and
//! every app container names only flags, environment variables and config keys its app has.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod app_interfaces;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use app_interfaces::{AppInterface, interface_for_image};
use muster_exchange_api::documents::{Document, parse_documents, read_documents};
use serde_json::Value;

const CREDENTIALS_LABEL: &str = "exchange.muster.giantswarm.io/credentials";
const SIDECAR_PORT: i64 = 8090;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_muster-exchange"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(yaml_files(&path));
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The topology folders: every directory directly under `examples/`.
fn topology_folders() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn documents(folder: &Path) -> Vec<Document> {
    yaml_files(folder)
        .iter()
        .flat_map(|f| read_documents(&f.to_string_lossy()).unwrap())
        .collect()
}

fn validate(file: &Path) -> Output {
    bin().arg("validate").arg("-f").arg(file).output().unwrap()
}

fn inject(app: &Path, mcpservers: &Path) -> Output {
    bin()
        .arg("inject")
        .arg("-f")
        .arg(app)
        .arg("--mcpservers")
        .arg(mcpservers)
        .output()
        .unwrap()
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} missing in {value}"))
}

fn of_kind<'a>(docs: &'a [Document], kind: &str) -> Vec<&'a Document> {
    docs.iter().filter(|d| d.kind() == kind).collect()
}

#[test]
fn every_example_file_passes_validate_and_the_invalid_ones_fail_it() {
    let files = yaml_files(&repo().join("examples"));
    assert!(files.len() >= 10, "examples/ lost files: {files:?}");
    for file in files {
        let out = validate(&file);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let expected = if name.contains("invalid") { 1 } else { 0 };
        assert_eq!(
            out.status.code(),
            Some(expected),
            "validate {}:\n{}{}",
            file.display(),
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

#[test]
fn there_is_one_folder_per_topology() {
    let names: Vec<String> = topology_folders()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["muster-exchanges", "sidecar-exchanges"]);
}

/// The MCPServer of a folder and the topology it declares.
fn mcpserver(folder: &Path) -> Value {
    let docs = documents(folder);
    let servers = of_kind(&docs, "MCPServer");
    assert_eq!(servers.len(), 1, "{}: one MCPServer per folder", folder.display());
    servers[0].value.clone()
}

#[test]
fn topology_m_enables_muster_exchange_and_topology_f_forwards_with_a_complete_block() {
    let m = mcpserver(&repo().join("examples/muster-exchanges"));
    assert_eq!(
        m.pointer("/spec/auth/tokenExchange/enabled"),
        Some(&Value::Bool(true))
    );
    assert_ne!(m.pointer("/spec/auth/forwardToken"), Some(&Value::Bool(true)));

    let out = validate(&repo().join("examples/sidecar-exchanges/mcpserver.yaml"));
    assert!(
        !text(&out.stderr).contains("Warning:"),
        "topology F is valid without warnings: {}",
        text(&out.stderr)
    );
    let f = mcpserver(&repo().join("examples/sidecar-exchanges"));
    assert_eq!(f.pointer("/spec/auth/forwardToken"), Some(&Value::Bool(true)));
    assert_eq!(
        f.pointer("/spec/auth/tokenExchange/enabled"),
        Some(&Value::Bool(false))
    );
    for field in [
        "dexTokenEndpoint",
        "connectorId",
        "clientCredentialsSecretRef/name",
    ] {
        assert!(
            f.pointer(&format!("/spec/auth/tokenExchange/{field}")).is_some(),
            "topology F needs tokenExchange.{field} for the sidecar"
        );
    }
}

#[test]
fn each_folder_has_the_labelled_opaque_credentials_secret_its_mcpserver_names() {
    for folder in topology_folders() {
        let docs = documents(&folder);
        let server = mcpserver(&folder);
        let wanted = str_at(
            &server,
            "/spec/auth/tokenExchange/clientCredentialsSecretRef/name",
        );
        let secret = of_kind(&docs, "Secret")
            .into_iter()
            .find(|d| d.value.pointer("/metadata/name").and_then(Value::as_str) == Some(wanted))
            .unwrap_or_else(|| panic!("{}: no Secret {wanted}", folder.display()));
        assert_eq!(secret.value["type"], "Opaque", "{}", folder.display());
        assert_eq!(
            secret.value["metadata"]["labels"][CREDENTIALS_LABEL],
            "true",
            "{}: the controller and webhook require the opt-in label",
            folder.display()
        );
        assert_eq!(
            secret.value["metadata"]["namespace"],
            server["metadata"]["namespace"],
            "{}: the sidecar mounts it from the pod's (= the MCPServer's) namespace",
            folder.display()
        );
        for key in ["client-id", "client-secret"] {
            assert!(
                secret.value["stringData"][key].is_string(),
                "{}: {key}",
                folder.display()
            );
        }
    }
}

/// The pod templates of a folder's Deployments, with the annotations the webhook reads.
fn deployments(folder: &Path) -> Vec<Value> {
    of_kind(&documents(folder), "Deployment")
        .into_iter()
        .map(|d| d.value.clone())
        .collect()
}

#[test]
fn the_mcpserver_url_reaches_the_sidecar_through_the_apps_service() {
    for folder in topology_folders() {
        let docs = documents(&folder);
        let server = mcpserver(&folder);
        let url = str_at(&server, "/spec/url");
        let deployments = deployments(&folder);
        assert_eq!(deployments.len(), 1, "{}", folder.display());
        let labels = &deployments[0]["spec"]["template"]["metadata"]["labels"];
        let services = of_kind(&docs, "Service");
        let service = services
            .iter()
            .find(|s| {
                s.value["spec"]["selector"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .all(|(k, v)| &labels[k] == v)
            })
            .unwrap_or_else(|| panic!("{}: no Service selects the app's pods", folder.display()));
        let name = str_at(&service.value, "/metadata/name");
        let namespace = str_at(&service.value, "/metadata/namespace");
        let port = &service.value["spec"]["ports"][0];
        assert_eq!(
            port["targetPort"],
            SIDECAR_PORT,
            "{}: Service must reach the sidecar",
            folder.display()
        );
        let host_port = if port["port"] == 80 {
            format!("http://{name}.{namespace}.svc/")
        } else {
            format!("http://{name}.{namespace}.svc:{}/", port["port"])
        };
        assert!(
            url.starts_with(&host_port),
            "{}: url {url} is not {host_port}…",
            folder.display()
        );
    }
}

/// Runs `inject` on a folder's app.yaml and returns the injected pod templates.
fn injected(folder: &Path) -> Vec<Value> {
    let out = inject(&folder.join("app.yaml"), &folder.join("mcpserver.yaml"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "inject {}: {}",
        folder.display(),
        text(&out.stderr)
    );
    parse_documents(&text(&out.stdout), "inject output")
        .unwrap()
        .into_iter()
        .filter(|d| d.kind() == "Deployment")
        .map(|d| d.value["spec"]["template"].clone())
        .collect()
}

fn sidecar_config(template: &Value) -> Value {
    let sidecar = template["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "token-exchange")
        .expect("no token-exchange sidecar injected");
    let env = sidecar["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "MUSTER_EXCHANGE_SIDECAR_CONFIG")
        .unwrap();
    serde_json::from_str(env["value"].as_str().unwrap()).unwrap()
}

fn volume_names(template: &Value) -> Vec<String> {
    template["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn topology_m_app_is_injectable_in_bearer_mode_without_a_kubeconfig() {
    let templates = injected(&repo().join("examples/muster-exchanges"));
    assert_eq!(templates.len(), 1);
    let config = sidecar_config(&templates[0]);
    assert_eq!(config["headerMode"], "bearer");
    assert_eq!(config["upstream"], "http://127.0.0.1:8080");
    assert_eq!(config["clusters"][0]["name"], "cluster-a");
    assert!(volume_names(&templates[0]).contains(&"mx-cred-cluster-a".to_string()));
    assert!(
        !volume_names(&templates[0])
            .iter()
            .any(|v| v.starts_with("mx-kcfg-"))
    );
}

#[test]
fn topology_f_app_is_injectable_in_auth_headers_mode_with_its_endpoint_configmap_and_no_kubeconfig() {
    let templates = injected(&repo().join("examples/sidecar-exchanges"));
    assert_eq!(templates.len(), 1);
    let config = sidecar_config(&templates[0]);
    assert_eq!(config["headerMode"], "auth-headers");
    assert_eq!(config["clusters"][0]["name"], "cluster-b");
    assert_eq!(
        config["clusters"][0]["endpointDir"],
        "/var/run/muster-exchange/clusters/cluster-b/endpoint"
    );
    assert_eq!(config["clusters"][0].get("kubeconfigFile"), None);
    let volumes = volume_names(&templates[0]);
    // The app's own volume (`config`) and the two injected ones: no kubeconfig Secret.
    assert_eq!(
        volumes,
        ["config", "mx-cred-cluster-b", "mx-endp-cluster-b"],
        "{volumes:?}"
    );
}

#[test]
fn the_auth_headers_folder_holds_the_endpoint_configmap_its_mcpserver_names() {
    let folder = repo().join("examples/sidecar-exchanges");
    let docs = documents(&folder);
    let server = mcpserver(&folder);
    let name = str_at(
        &server,
        "/metadata/annotations/exchange.muster.giantswarm.io~1endpoint-configmap",
    );
    let configmap = of_kind(&docs, "ConfigMap")
        .into_iter()
        .find(|d| d.value["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("ConfigMap {name} (the MCPServer's endpoint-configmap) missing"));
    assert_eq!(
        configmap.value["metadata"]["namespace"],
        server["metadata"]["namespace"]
    );
    let data = configmap.value["data"].as_object().unwrap();
    let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["ca.crt", "server"], "exactly the two keys, nothing secret");
    assert!(str_at(&configmap.value, "/data/server").starts_with("https://"));
    let ca = str_at(&configmap.value, "/data/ca.crt");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "the CA is not PEM");
    assert!(
        ca.trim_end().ends_with("-----END CERTIFICATE-----"),
        "the CA is not PEM"
    );
    assert!(
        of_kind(&docs, "Secret")
            .iter()
            .all(|d| !str_at(&d.value, "/metadata/name").ends_with("-kubeconfig")),
        "the example must not ship a kubeconfig Secret"
    );
}

/// Checks one container against its app's interface; returns what it does not know.
fn unknown_names(container: &Value, app: &AppInterface) -> Vec<String> {
    let mut unknown = Vec::new();
    let args: Vec<&str> = container["args"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap()).collect())
        .unwrap_or_default();
    let mut rest = args.as_slice();
    if let Some(sub) = app.subcommand {
        match rest.split_first() {
            Some((first, tail)) if *first == sub => rest = tail,
            _ => unknown.push(format!("args must start with the subcommand {sub:?}: {args:?}")),
        }
    }
    for arg in rest {
        match arg.strip_prefix("--") {
            Some(flag) => {
                let name = flag.split('=').next().unwrap();
                if !app.flags.contains(&name) {
                    unknown.push(format!("flag --{name}"));
                }
            }
            // Only `--flag=value`: a separate value cannot be told from a positional argument.
            None => unknown.push(format!("argument {arg:?} (write flags as --flag=value)")),
        }
    }
    for env in container["env"].as_array().into_iter().flatten() {
        let name = env["name"].as_str().unwrap();
        if !app.env.contains(&name) {
            unknown.push(format!("env {name}"));
        }
    }
    unknown
}

/// The TOML keys of a kubernetes-mcp-server config file (`key = value` lines at top level).
fn toml_keys(config: &str) -> Vec<&str> {
    config
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .map(|l| l.split('=').next().unwrap().trim())
        .collect()
}

fn check_apps(folder: &Path) -> usize {
    let docs = documents(folder);
    let mut checked = 0;
    for deployment in deployments(folder) {
        for container in deployment["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
        {
            let image = str_at(container, "/image");
            let app = interface_for_image(image).unwrap_or_else(|| {
                panic!(
                    "{}: no flag list for image {image}; add one to app_interfaces.rs with its source",
                    folder.display()
                )
            });
            let unknown = unknown_names(container, app);
            assert!(
                unknown.is_empty(),
                "{} ({image}) names what {} lacks: {unknown:?}",
                folder.display(),
                app.name
            );
            checked += 1;
        }
    }
    for config_map in of_kind(&docs, "ConfigMap") {
        if let Some(config) = config_map.value["data"]["config.toml"].as_str() {
            let app = interface_for_image("kubernetes-mcp-server").unwrap();
            for key in toml_keys(config) {
                assert!(
                    app.config_keys.contains(&key),
                    "{}: unknown TOML key {key}",
                    folder.display()
                );
            }
            checked += 1;
        }
    }
    checked
}

#[test]
fn every_app_container_names_only_flags_env_and_config_keys_its_app_has() {
    let mut checked = 0;
    for folder in topology_folders() {
        checked += check_apps(&folder);
    }
    assert!(checked >= 3, "checked only {checked} containers/configs");
}

#[test]
fn the_flag_check_catches_a_flag_the_app_does_not_have() {
    let app = interface_for_image("gsoci.azurecr.io/giantswarm/mcp-kubernetes:1.0.38").unwrap();
    let container = serde_json::json!({
        "args": ["serve", "--transport=streamable-http", "--cluster-provider-strategy=auth-headers"],
        "env": [{"name": "DEX_CLIENT_SECRET"}, {"name": "NO_SUCH_VARIABLE"}],
    });
    assert_eq!(
        unknown_names(&container, app),
        ["flag --cluster-provider-strategy", "env NO_SUCH_VARIABLE"]
    );
    let missing_subcommand = serde_json::json!({"args": ["--transport=stdio"]});
    assert_eq!(unknown_names(&missing_subcommand, app).len(), 1);
    let separate_value = serde_json::json!({"args": ["serve", "--transport", "stdio"]});
    assert_eq!(
        unknown_names(&separate_value, app),
        ["argument \"stdio\" (write flags as --flag=value)"]
    );
    let kms = interface_for_image("registry.example.com/kubernetes-mcp-server:pr-509").unwrap();
    assert_eq!(
        unknown_names(
            &serde_json::json!({"args": ["--cluster-provider-strategy=auth-headers"]}),
            kms
        ),
        ["flag --cluster-provider-strategy"],
        "PR #509 sets the strategy in TOML only"
    );
    assert_eq!(
        toml_keys("# c\ncluster_provider_strategy = \"auth-headers\"\n[x]\n"),
        ["cluster_provider_strategy"]
    );
}

/// e2e/fixtures/<topology>/: the copies of the examples the kind e2e installs.
fn fixture_folder(topology: &Path) -> PathBuf {
    repo().join("e2e/fixtures").join(topology.file_name().unwrap())
}

fn by_kind_and_name<'a>(docs: &'a [Document], kind: &str, name: &str) -> &'a Value {
    &docs
        .iter()
        .find(|d| d.kind() == kind && d.value["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name}"))
        .value
}

#[test]
fn the_e2e_fixtures_install_what_the_examples_describe_with_only_the_remote_dex_and_the_app_replaced() {
    for example in topology_folders() {
        let fixture = fixture_folder(&example);
        let (ex, fx) = (documents(&example), documents(&fixture));
        let context = fixture.display().to_string();

        // The same files (the script writes the F endpoint ConfigMap, for this cluster's API server and CA).
        let names = |dir: &Path| -> Vec<String> {
            yaml_files(dir)
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .filter(|n| n != "endpoint-configmap.yaml")
                .collect()
        };
        assert_eq!(names(&example), names(&fixture), "{context}");

        // The MCPServer: equal but for the remote Dex's endpoint.
        let mut ex_server = mcpserver(&example);
        let mut fx_server = mcpserver(&fixture);
        for server in [&mut ex_server, &mut fx_server] {
            server["spec"]["auth"]["tokenExchange"]["dexTokenEndpoint"] = Value::Null;
        }
        assert_eq!(ex_server, fx_server, "{context}");

        // The namespace and the credentials Secret's identity, label and type.
        assert_eq!(
            by_kind_and_name(&ex, "Namespace", "muster"),
            by_kind_and_name(&fx, "Namespace", "muster")
        );
        let secret = str_at(
            &ex_server,
            "/spec/auth/tokenExchange/clientCredentialsSecretRef/name",
        );
        let (a, b) = (
            by_kind_and_name(&ex, "Secret", secret),
            by_kind_and_name(&fx, "Secret", secret),
        );
        assert_eq!(
            (&a["metadata"], &a["type"]),
            (&b["metadata"], &b["type"]),
            "{context}"
        );

        // The app: same Deployment, pod labels and annotations, Service and NetworkPolicies.
        let deployment = str_at(&deployments(&example)[0], "/metadata/name").to_string();
        let (a, b) = (
            by_kind_and_name(&ex, "Deployment", &deployment),
            by_kind_and_name(&fx, "Deployment", &deployment),
        );
        assert_eq!(
            a["spec"]["template"]["metadata"], b["spec"]["template"]["metadata"],
            "{context}"
        );
        for kind in ["Service", "NetworkPolicy"] {
            let specs = |docs: &[Document]| -> Vec<Value> {
                of_kind(docs, kind).iter().map(|d| d.value.clone()).collect()
            };
            assert_eq!(specs(&ex), specs(&fx), "{context}: {kind}");
        }
        check_apps(&fixture);
    }
}

#[test]
fn the_e2e_topology_m_fixture_is_injectable() {
    let templates = injected(&repo().join("e2e/fixtures/muster-exchanges"));
    assert_eq!(sidecar_config(&templates[0])["headerMode"], "bearer");
}

#[test]
fn the_e2e_topology_f_fixture_is_injectable() {
    let templates = injected(&repo().join("e2e/fixtures/sidecar-exchanges"));
    assert_eq!(sidecar_config(&templates[0])["headerMode"], "auth-headers");
}
