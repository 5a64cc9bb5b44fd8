//! HTTPS: certificates from files (and their reload), refusal of an expired one,
//! renewal of the self-signed certificate before it expires, TLS 1.2 and 1.3 only.

use crate::common::{TestApp, test_config};
use whacaster::config::TlsMode;

fn write_cert(dir: &std::path::Path, days: i64) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(400);
    params.not_after = now + time::Duration::days(days);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (dir.join("fullchain.pem"), dir.join("privkey.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

#[tokio::test]
async fn certificate_from_files_is_served_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    let (c, k) = write_cert(dir.path(), 60);
    cfg.tls.mode = TlsMode::Files;
    cfg.tls.cert = Some(c);
    cfg.tls.key = Some(k);
    let app = TestApp::start_with(dir, cfg.clone()).await;
    let r = app.browser().get("/healthz").await;
    assert_eq!(r.status, 200);
    let tls = app.state.tls.clone().unwrap();
    let before = tls.info().unwrap().not_after;
    write_cert(cfg.tls.cert.as_ref().unwrap().parent().unwrap(), 90);
    tls.reload(&cfg, app.clock.now()).unwrap();
    let after = tls.info().unwrap().not_after;
    assert!(after > before + 20 * 86_400, "the new certificate is in use");
    // A broken file keeps the old certificate in service.
    std::fs::write(cfg.tls.cert.as_ref().unwrap(), "not a certificate").unwrap();
    assert!(tls.reload(&cfg, app.clock.now()).is_err());
    assert_eq!(tls.info().unwrap().not_after, after);
    assert_eq!(app.browser().get("/healthz").await.status, 200);
}

#[tokio::test]
async fn an_expired_certificate_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    let (c, k) = write_cert(dir.path(), -1);
    cfg.tls.mode = TlsMode::Files;
    cfg.tls.cert = Some(c);
    cfg.tls.key = Some(k);
    let err = TestApp::try_start(dir, cfg).await.err().expect("refused");
    assert!(err.contains("expired") && err.contains("fullchain.pem"), "{err}");
}

#[tokio::test]
async fn self_signed_certificate_is_renewed_before_it_expires() {
    let app = TestApp::start().await;
    let tls = app.state.tls.clone().unwrap();
    let info = tls.info().unwrap();
    // The admin's system page shows issuer and expiry of what is served.
    let (admin, _) = app.admin("owner@toko.id").await;
    let page = admin.get("/admin/system").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Whacaster (self-signed)") && page.body.contains("days left"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Meta does not deliver webhooks"),
        "the page says plainly what Meta needs"
    );

    assert!(
        info.subject_names.contains(&"localhost".to_string()) && info.subject_names.contains(&"127.0.0.1".to_string())
    );
    let msg = tls.renew_if_needed(&app.config, app.clock.now()).unwrap();
    assert!(msg.starts_with("valid until"), "{msg}");
    app.clock.advance(340 * 86_400);
    let msg = tls.renew_if_needed(&app.config, app.clock.now()).unwrap();
    assert!(msg.starts_with("renewed"), "{msg}");
    assert!(tls.info().unwrap().not_after > info.not_after + 300 * 86_400);
    // Persisted: the next start reuses the renewed certificate.
    let on_disk = whacaster::tls::inspect(&app.config, None).unwrap().unwrap();
    assert_eq!(on_disk.not_after, tls.info().unwrap().not_after);
}

#[tokio::test]
async fn only_tls_1_2_and_1_3_are_offered() {
    let app = TestApp::start().await;
    for (version, ok) in [("1.2", true), ("1.3", true)] {
        let mut b = reqwest::Client::builder().danger_accept_invalid_certs(true);
        b = if version == "1.2" {
            b.max_tls_version(reqwest::tls::Version::TLS_1_2)
        } else {
            b.min_tls_version(reqwest::tls::Version::TLS_1_3)
        };
        let r = b.build().unwrap().get(format!("{}/healthz", app.base)).send().await;
        assert_eq!(r.is_ok(), ok, "TLS {version}");
    }
    // Plain HTTP on the TLS port gets nowhere.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", app.base.trim_start_matches("https://")))
        .send()
        .await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));
}
