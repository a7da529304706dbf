//! TLS for the connections the operator opens to pods (HTTPS hooks): the server's certificate
//! is always verified, against the certificates of a CA Secret or the system's trusted roots.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::sync::Arc;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// The key of a CA Secret that holds the PEM certificates.
pub const CA_KEY: &str = "ca.crt";

/// A client configuration trusting the certificates in key `ca.crt` of Secret `ca_secret` in
/// `namespace`, or the system's roots when there is none. The error says what is missing.
pub async fn client_config(client: &Client, namespace: &str, ca_secret: Option<&str>) -> Result<Arc<ClientConfig>, String> {
    let roots = match ca_secret {
        Some(name) => {
            let secret = Api::<Secret>::namespaced(client.clone(), namespace)
                .get_opt(name)
                .await
                .map_err(|e| format!("cannot read CA Secret {namespace}/{name}: {e}"))?
                .ok_or_else(|| format!("CA Secret {namespace}/{name} does not exist"))?;
            let pem = secret.data.as_ref().and_then(|d| d.get(CA_KEY)).map(|b| b.0.clone()).unwrap_or_default();
            roots_from_pem(&pem).map_err(|why| format!("CA Secret {namespace}/{name}: {why}"))?
        }
        None => system_roots()?,
    };
    config(roots)
}

/// The root store of the PEM certificates in `pem`.
pub fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("key {CA_KEY} is not PEM certificates: {e}"))?;
        roots.add(cert).map_err(|e| format!("key {CA_KEY} holds a certificate that cannot be used: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("key {CA_KEY} holds no PEM certificate"));
    }
    Ok(roots)
}

/// The system's trusted roots (`SSL_CERT_FILE` / `SSL_CERT_DIR` or the platform's store).
fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err("no trusted root certificates on the operator's system: name a caSecret".into());
    }
    Ok(roots)
}

/// A client configuration with `roots` and rustls' safe defaults (ring).
pub fn config(roots: RootCertStore) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
