//! HTTPS freeze and thaw hooks: the operator verifies the archive server's certificate against
//! the CA in `caSecret` and the name in `serverName`, and the hooks reach the server.

mod backup_support;

use anyhow::ensure;
use archivist_e2e::testing::with_namespace;
use backup_support::*;
use k8s_openapi::api::core::v1::Secret;

/// A CA and a certificate it signed for `name`: (CA PEM, certificate PEM, key PEM).
fn pki(name: &str) -> anyhow::Result<(String, String, String)> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "archive hooks CA");
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])?.signed_by(&key, &issuer)?;
    Ok((ca.pem(), cert.pem(), key.serialize_pem()))
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn https_hooks_freeze_and_thaw_a_server_whose_certificate_the_ca_secret_signed() {
    with_namespace("bk-https", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        let server_name = "archive-0.archive.hooks.test";
        let (ca, cert, key) = pki(server_name)?;
        data_pvc(&client, &ns, "meta", &[]).await?;
        let content = data_pvc(&client, &ns, "content", &[]).await?;
        std::fs::write(content.join("cert.pem"), cert)?;
        std::fs::write(content.join("key.pem"), key)?;
        create::<Secret>(&client, &ns, &format!("metadata: {{name: hooks-ca}}\nstringData:\n  ca.crt: |\n{}", ca.lines().map(|l| format!("    {l}\n")).collect::<String>())).await?;
        https_hook_archive(&client, &ns, "archive", "content").await?;
        policy(&client, &ns, "archive", &format!(r#"
  target: {{kind: StatefulSet, name: archive}}
  quiesce:
    mode: Freeze
    freeze: {{http: {{port: 8443, path: /freeze, scheme: HTTPS, caSecret: hooks-ca, serverName: {server_name}}}}}
    thaw: {{http: {{port: 8443, path: /thaw, scheme: HTTPS, caSecret: hooks-ca, serverName: {server_name}}}}}
    timeoutSeconds: 60
  stores:
  - name: s1
    metadata: {{volumeClaims: [meta]}}
    content: {{volumeClaims: [content]}}
"#)).await?;
        start_backup(&client, &ns, "b1", "archive").await?;
        let b1 = wait_completed(&client, &ns, "b1", &mut operator).await?;
        let log = std::fs::read_to_string(content.join("hooks.log")).unwrap_or_default();
        ensure!(log == "freeze archive-0\nthaw archive-0\n", "hooks.log: {log:?}; run: {}", timeline(&b1));
        Ok(())
    })
    .await;
}
