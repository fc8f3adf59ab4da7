//! The deployment recipes in `deploy/`, checked offline: YAML parses and agrees with itself and
//! with the relay (ports, probes, paths, names), the unit passes `systemd-analyze verify`, the
//! Dockerfile is multi-stage, non-root and health-checked, and the configurations they ship load.

use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(file)
}

fn read(file: &str) -> String {
    std::fs::read_to_string(deploy(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn yaml(file: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn s(y: &Yaml) -> &str {
    y.as_str().unwrap_or_else(|| panic!("not a string: {y:?}"))
}

#[test]
fn dockerfile_is_multi_stage_non_root_health_checked_and_copies_what_exists() {
    let text = read("Dockerfile");
    let stages = text.lines().filter(|l| l.starts_with("FROM ")).count();
    assert!(stages >= 2, "multi-stage");
    let runtime = &text[text.rfind("\nFROM ").unwrap()..];
    let user = runtime.lines().find_map(|l| l.strip_prefix("USER ")).expect("the runtime stage sets USER");
    assert!(!["root", "0"].contains(&user.trim()), "runs as {user}");
    assert!(
        runtime.contains("HEALTHCHECK") && runtime.contains("\"healthcheck\""),
        "HEALTHCHECK uses `callrelay healthcheck`"
    );
    assert!(
        runtime.contains("VOLUME [\"/data\"]") && runtime.contains("CALLRELAY__STORE__PATH=/data/"),
        "the store is on a volume"
    );
    assert!(runtime.contains("EXPOSE 8080"));
    assert!(text.contains("--locked"), "builds what Cargo.lock pins");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for line in text.lines().filter(|l| l.starts_with("COPY ") && !l.contains("--from=")) {
        let parts: Vec<&str> = line.split_whitespace().filter(|p| !p.starts_with("--")).collect();
        for src in &parts[1..parts.len() - 1] {
            assert!(root.join(src).exists(), "Dockerfile copies `{src}`, which does not exist");
        }
    }
}

#[test]
fn healthcheck_command_reports_the_relays_health() {
    let out = crate::helpers::bin().args(["healthcheck", "--url", "http://127.0.0.1:9/healthz"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "nothing listens there");
}

#[tokio::test]
async fn healthcheck_passes_against_a_running_relay() {
    let app = crate::helpers::spawn_app().await;
    let url = format!("{}/healthz", app.address);
    let out = tokio::task::spawn_blocking(move || {
        crate::helpers::bin().args(["healthcheck", "--url", &url]).output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn compose_runs_the_relay_behind_caddy_for_one_domain() {
    let doc = &yaml("docker-compose.yml")[0];
    let relay = &doc["services"]["callrelay"];
    let caddy = &doc["services"]["caddy"];
    assert_eq!(s(&relay["build"]["dockerfile"]), "deploy/Dockerfile");
    assert!(relay["volumes"].as_vec().unwrap().iter().any(|v| s(v).ends_with(":/data")), "the store on a volume");
    assert!(s(&caddy["environment"]["DOMAIN"]).contains("${DOMAIN"), "one variable names the domain");
    let ports: Vec<&str> = caddy["ports"].as_vec().unwrap().iter().map(s).collect();
    assert!(ports.contains(&"443:443") && ports.contains(&"80:80"));
    let caddyfile = read("Caddyfile");
    assert!(caddyfile.contains("{$DOMAIN}") && caddyfile.contains("reverse_proxy callrelay:8080"), "{caddyfile}");
    assert!(caddyfile.contains("handle /webhook*"), "only the webhook path is public: {caddyfile}");
}

#[test]
fn systemd_unit_is_hardened_and_verifies() {
    let unit = read("systemd/callrelay.service");
    for directive in [
        "DynamicUser=yes",
        "StateDirectory=callrelay",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "EnvironmentFile=/etc/callrelay/callrelay.env",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "CALLRELAY__STORE__PATH=/var/lib/callrelay/",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        // Readiness, and the successor of an in-place restart taking over as the main process.
        "Type=notify",
        "NotifyAccess=all",
    ] {
        assert!(unit.contains(directive), "missing {directive}");
    }
    let env = read("systemd/callrelay.env.example");
    assert!(env.contains("SLACK_WEBHOOK_URL=") && env.contains("DISCORD_WEBHOOK_URL="));
    // The socket unit holds the webhook's port across restarts and hands it to this service.
    let socket = read("systemd/callrelay.socket");
    assert!(unit.contains("Requires=callrelay.socket"), "the service needs its socket");
    for directive in ["ListenStream=8080", "FileDescriptorName=webhook", "Service=callrelay.service"] {
        assert!(socket.contains(directive), "callrelay.socket misses {directive}");
    }
    let shipped = callrelay::setup::load(&callrelay::config::ConfigSource::BuiltIn).unwrap();
    assert!(shipped.server.listen.ends_with(":8080"), "the socket's port is the shipped relay.toml's");
    let Ok(analyze) = which("systemd-analyze") else {
        eprintln!("systemd-analyze is not installed; checked the directives only");
        return;
    };
    // Verify a copy whose ExecStart points at the binary under test (verify checks it exists).
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("callrelay.service");
    std::fs::write(&copy, unit.replace("/usr/local/bin/callrelay", env!("CARGO_BIN_EXE_callrelay"))).unwrap();
    let socket_copy = dir.path().join("callrelay.socket");
    std::fs::write(&socket_copy, &socket).unwrap();
    let out = std::process::Command::new(analyze).arg("verify").arg(&copy).arg(&socket_copy).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    let complaints: Vec<&str> = said.lines().filter(|l| l.contains("callrelay.s")).collect();
    assert!(out.status.success() && complaints.is_empty(), "systemd-analyze verify: {said}");
}

fn which(cmd: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(cmd)).find(|p| p.is_file()))
        .ok_or(())
}

#[test]
fn kubernetes_manifests_agree_with_each_other_and_the_relay() {
    let kustomization = &yaml("kubernetes/kustomization.yaml")[0];
    let mut docs = Vec::new();
    for file in kustomization["resources"].as_vec().unwrap() {
        docs.extend(yaml(&format!("kubernetes/{}", s(file))));
    }
    let find = |kind: &str| docs.iter().find(|d| s(&d["kind"]) == kind).unwrap_or_else(|| panic!("no {kind}"));
    let deployment = find("Deployment");
    let service = find("Service");
    let ingress = find("Ingress");
    let pvc = find("PersistentVolumeClaim");
    let configmap = find("ConfigMap");
    let secret = find("Secret");

    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(deployment["spec"]["replicas"].as_i64(), Some(1), "one writer for the SQLite store");
    assert_eq!(s(&deployment["spec"]["strategy"]["type"]), "Recreate");
    assert_eq!(s(&container["livenessProbe"]["httpGet"]["path"]), "/healthz");
    assert!(s(&container["readinessProbe"]["httpGet"]["path"]).starts_with("/readyz"));
    assert_eq!(container["ports"][0]["containerPort"].as_i64(), Some(8080));
    assert_eq!(s(&service["spec"]["ports"][0]["targetPort"]), s(&container["ports"][0]["name"]));
    assert_eq!(
        s(&ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]),
        s(&service["metadata"]["name"])
    );
    assert!(!ingress["spec"]["tls"].is_badvalue(), "the Ingress terminates TLS");
    let volumes = pod["volumes"].as_vec().unwrap();
    let claim = volumes.iter().find_map(|v| v["persistentVolumeClaim"]["claimName"].as_str()).unwrap();
    assert_eq!(claim, s(&pvc["metadata"]["name"]));
    let cm = volumes.iter().find_map(|v| v["configMap"]["name"].as_str()).unwrap();
    assert_eq!(cm, s(&configmap["metadata"]["name"]));
    assert_eq!(s(&container["envFrom"][0]["secretRef"]["name"]), s(&secret["metadata"]["name"]));
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"].as_bool(), Some(true));
    let mounts = container["volumeMounts"].as_vec().unwrap();
    assert!(mounts.iter().any(|m| s(&m["mountPath"]) == "/data"));

    // The relay.toml it ships loads, with the Secret's variables, and keeps the store on /data.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    let mut text = s(&configmap["data"]["relay.toml"])
        .replace("/config/templates", &crate::helpers::templates_dir().display().to_string());
    // As the pod's environment would (without touching this test process's environment).
    for (k, v) in secret["stringData"].as_hash().unwrap() {
        text = text.replace(&format!("${{{}}}", s(k)), s(v));
    }
    assert!(!text.contains("${"), "every variable comes from the Secret");
    std::fs::write(&file, text).unwrap();
    let config = callrelay::setup::load(&callrelay::config::ConfigSource::File(file)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.store.path, Path::new("/data/callrelay.db"));
    assert_eq!(config.server.listen, "0.0.0.0:8080");
    assert!(config.disabled_channels().next().is_none(), "every URL comes from the Secret");
    assert!(callrelay::samples::check(&config).problems.is_empty());
}

#[test]
fn the_image_and_unit_configurations_load() {
    // The image bakes the shipped relay.toml; systemd runs it from /etc/callrelay. Both are the
    // shipped file, which the `check` tests cover; here: the Dockerfile's overrides are valid keys.
    let text = read("Dockerfile");
    for var in ["CALLRELAY__STORE__PATH", "CALLRELAY__LOG__FORMAT"] {
        assert!(text.contains(var));
    }
    let out = crate::helpers::bin()
        .args(["check", "--config"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("relay.toml"))
        .env("CALLRELAY__STORE__PATH", "/data/callrelay.db")
        .env("CALLRELAY__LOG__FORMAT", "json")
        .env("SLACK_WEBHOOK_URL", "https://hooks.slack.test/services/T/B/x")
        .env("DISCORD_WEBHOOK_URL", "https://discord.test/api/webhooks/1/x")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn ha_compose_runs_two_relays_on_postgresql_behind_caddy_with_health_checks_and_safe_retries() {
    let doc = &yaml("ha/docker-compose.yml")[0];
    let services = &doc["services"];
    let postgres = &services["postgres"];
    assert!(s(&postgres["image"]).starts_with("postgres:"));
    assert!(!postgres["healthcheck"].is_badvalue(), "relays start once the database answers");
    for name in ["relay-1", "relay-2"] {
        let relay = &services[name];
        let url = s(&relay["environment"]["CALLRELAY__STORE__URL"]);
        assert!(url.starts_with("postgres://") && url.contains("@postgres:5432/"), "{name}: {url}");
        assert!(url.contains("${POSTGRES_PASSWORD}"), "{name}: the password comes from the environment");
        assert_eq!(s(&relay["depends_on"]["postgres"]["condition"]), "service_healthy");
        assert_eq!(s(&relay["build"]["dockerfile"]), "deploy/Dockerfile");
    }
    let caddyfile = read("ha/Caddyfile");
    for needed in [
        "reverse_proxy relay-1:8080 relay-2:8080",
        "health_uri /readyz?scope=intake",
        "lb_try_duration",
        "lb_retry_match",
        "method POST",
        "handle /webhook*",
    ] {
        assert!(caddyfile.contains(needed), "the Caddyfile lacks `{needed}`:\n{caddyfile}");
    }
    // The relays' store setting is a valid key, and its password never shows.
    let out = crate::helpers::bin()
        .args(["check", "--config"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("relay.toml"))
        .env("CALLRELAY__STORE__URL", "postgres://callrelay:pw-S3CRET-db@postgres:5432/callrelay")
        .env("SLACK_WEBHOOK_URL", "https://hooks.slack.test/services/T/B/x")
        .env("DISCORD_WEBHOOK_URL", "https://discord.test/api/webhooks/1/x")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("pw-S3CRET-db"), "{said}");
}

/// The HA overlay's own files and what the base gives it, checked by hand; rendered with
/// `kubectl kustomize` too where kubectl exists.
#[test]
fn kubernetes_ha_overlay_runs_two_replicas_on_the_database_from_a_secret_with_a_disruption_budget() {
    let kustomization = &yaml("kubernetes-ha/kustomization.yaml")[0];
    let resources: Vec<&str> = kustomization["resources"].as_vec().unwrap().iter().map(s).collect();
    assert_eq!(resources[0], "../kubernetes", "an overlay on the single-replica base");
    let patch = &yaml("kubernetes-ha/deployment-patch.yaml")[0];
    let secret = &yaml("kubernetes-ha/database-secret.yaml")[0];
    let pdb = &yaml("kubernetes-ha/pdb.yaml")[0];
    let base = yaml("kubernetes/deployment.yaml").remove(0);
    assert_eq!(base["spec"]["replicas"].as_i64(), Some(1), "the SQLite base stays at one replica");

    let rendered = match which("kubectl") {
        Ok(kubectl) => {
            let out =
                std::process::Command::new(kubectl).arg("kustomize").arg(deploy("kubernetes-ha")).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            Some(YamlLoader::load_from_str(&String::from_utf8_lossy(&out.stdout)).unwrap())
        }
        Err(()) => {
            eprintln!("note: no kubectl; the overlay is checked file by file only");
            None
        }
    };
    let deployment = match &rendered {
        Some(docs) => {
            assert!(docs.iter().all(|d| s(&d["kind"]) != "PersistentVolumeClaim"), "no volume claim with PostgreSQL");
            docs.iter().find(|d| s(&d["kind"]) == "Deployment").unwrap().clone()
        }
        None => patch.clone(),
    };
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"].as_i64(), Some(2));
    assert_eq!(s(&spec["strategy"]["type"]), "RollingUpdate");
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"].as_i64(), Some(0), "intake never stops in a roll");
    let container = &spec["template"]["spec"]["containers"][0];
    let env = container["env"].as_vec().unwrap();
    let store = env.iter().find(|e| s(&e["name"]) == "CALLRELAY__STORE__URL").expect("the store URL is set");
    let from = &store["valueFrom"]["secretKeyRef"];
    assert_eq!(s(&from["name"]), s(&secret["metadata"]["name"]));
    assert!(s(&secret["stringData"][s(&from["key"])]).starts_with("postgres://"));
    let labels = &base["spec"]["template"]["metadata"]["labels"];
    assert_eq!(pdb["spec"]["selector"]["matchLabels"], *labels, "the budget covers the relay's pods");
    assert_eq!(pdb["spec"]["minAvailable"].as_i64(), Some(1));
    if rendered.is_some() {
        let readiness = &container["readinessProbe"]["httpGet"]["path"];
        assert_eq!(s(readiness), "/readyz?scope=intake", "load balancing follows intake readiness");
    }
}
