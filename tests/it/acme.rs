//! ACME against Pebble (Debian package `pebble`, the ACME test server) on loopback:
//! the certificate is obtained with TLS-ALPN-01 on the HTTPS port, served, cached
//! encrypted, and reused at the next start. Skips with a reason when Pebble is absent;
//! `.ci/run` installs it.

use crate::common::{TestApp, test_config};
use std::process::{Child, Command, Stdio};
use whacaster::config::TlsMode;

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        // Best effort: it may have exited already.
        drop(self.0.kill());
        drop(self.0.wait());
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("nothing listens on {port}");
}

async fn issuer_when_issued(app: &TestApp) -> Option<String> {
    for _ in 0..300 {
        let info = app.state.tls.as_ref().and_then(|t| t.info());
        if let Some(i) = info.filter(|i| i.issuer.contains("Pebble")) {
            return Some(i.issuer);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    None
}

#[expect(clippy::too_many_lines, reason = "one scenario, told in order")]
#[tokio::test]
async fn certificate_from_an_acme_ca_with_tls_alpn_01() {
    use std::os::unix::fs::PermissionsExt;
    let pebble = ["/usr/bin/pebble", "/usr/local/bin/pebble"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(pebble) = pebble else {
        eprintln!("SKIPPED ACME test: pebble not installed (apt-get install pebble)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let keep = tempfile::tempdir().unwrap();
    // Pebble's own HTTPS certificate (its API), trusted by Whacaster through tls.acme_ca_root.
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (api_cert, api_key) = (keep.path().join("pebble-api.pem"), keep.path().join("pebble-api.key"));
    std::fs::write(&api_cert, cert.pem()).unwrap();
    std::fs::write(&api_key, key.serialize_pem()).unwrap();
    let (app_port, api_port, mgmt_port, http_port) = (free_port(), free_port(), free_port(), free_port());
    let pebble_cfg = keep.path().join("pebble.json");
    std::fs::write(
        &pebble_cfg,
        serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{api_port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
            "certificate": api_cert, "privateKey": api_key,
            "httpPort": http_port, "tlsPort": app_port,
            "ocspResponderURL": "", "externalAccountBindingRequired": false
        }})
        .to_string(),
    )
    .unwrap();
    let _pebble = Kill(
        Command::new(pebble)
            .args(["-config", pebble_cfg.to_str().unwrap()])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(api_port).await;

    let mut cfg = test_config(dir.path());
    cfg.listen = format!("127.0.0.1:{app_port}");
    cfg.public_url = Some(format!("https://localhost:{app_port}"));
    cfg.tls.mode = TlsMode::Acme;
    cfg.tls.acme_email = Some("owner@toko.id".into());
    cfg.tls.acme_directory = format!("https://127.0.0.1:{api_port}/dir");
    cfg.tls.acme_ca_root = Some(api_cert.clone());
    let data = cfg.data_dir.clone();
    let app = TestApp::start_with(dir, cfg.clone()).await;
    let issuer = issuer_when_issued(&app)
        .await
        .expect("Pebble issued a certificate within 30 s");
    assert!(issuer.contains("Pebble"), "{issuer}");

    // The certificate served on the HTTPS port chains to Pebble's root and names the host.
    let root_pem = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
        .get(format!("https://127.0.0.1:{mgmt_port}/roots/0"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let strict = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root_pem.as_bytes()).unwrap())
        .resolve("localhost", format!("127.0.0.1:{app_port}").parse().unwrap())
        .build()
        .unwrap();
    let r = strict
        .get(format!("https://localhost:{app_port}/healthz"))
        .send()
        .await
        .expect("verified TLS");
    assert_eq!(r.status(), 200);

    // Cached encrypted: no PEM on disk.
    let files: Vec<_> = std::fs::read_dir(data.join("acme"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(files.len() >= 2, "account and certificate cached: {files:?}");
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("BEGIN"),
            "{} is not plaintext PEM",
            f.display()
        );
        assert_eq!(std::fs::metadata(f).unwrap().permissions().mode() & 0o077, 0);
    }
    // `check` shows the issuer and expiry.
    let findings = whacaster::check::run(&cfg, None, app.clock.unix());
    assert!(
        findings
            .iter()
            .any(|f| f.text.contains("Pebble") && f.text.contains("valid until")),
        "{findings:?}"
    );

    // Next start: the cached certificate is served at once, without a new order.
    let guard = app.stop().await;
    let again = TestApp::start_with(guard, cfg).await;
    let info = again.state.tls.as_ref().unwrap();
    let mut cached = false;
    for _ in 0..20 {
        if info.info().is_some_and(|i| i.issuer.contains("Pebble")) {
            cached = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(cached, "the cached certificate is used after a restart");
    let r = strict
        .get(format!("https://localhost:{app_port}/healthz"))
        .send()
        .await
        .expect("verified TLS after restart");
    assert_eq!(r.status(), 200);
}
