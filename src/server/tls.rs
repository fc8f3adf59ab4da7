//! Native HTTPS with rustls: the certificate and key come from PEM files and are re-read on
//! SIGHUP, so a renewed certificate is served without a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;

/// Serves whichever certificate was loaded last.
#[derive(Debug)]
pub struct CertStore {
    current: ArcSwap<CertifiedKey>,
    cert: PathBuf,
    key: PathBuf,
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl CertStore {
    /// Loads the files named in `[server.tls]`.
    pub fn load(tls: &TlsConfig) -> anyhow::Result<Arc<CertStore>> {
        let key = certified_key(&tls.cert, &tls.key)?;
        Ok(Arc::new(CertStore { current: ArcSwap::from_pointee(key), cert: tls.cert.clone(), key: tls.key.clone() }))
    }

    /// Re-reads the files; on error the previous certificate stays in use.
    pub fn reload(&self) -> anyhow::Result<()> {
        let key = certified_key(&self.cert, &self.key)?;
        self.current.store(Arc::new(key));
        Ok(())
    }

    /// A rustls server configuration resolving to this store (actix adds the h2 and http/1.1 ALPN).
    pub fn server_config(self: &Arc<Self>) -> anyhow::Result<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone()))
    }
}

fn certified_key(cert: &Path, key: &Path) -> anyhow::Result<CertifiedKey> {
    use anyhow::Context as _;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read the certificate `{}` (key `server.tls.cert`)", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("`{}` is not a PEM certificate chain (key `server.tls.cert`)", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "`{}` holds no certificate (key `server.tls.cert`)", cert.display());
    let private = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read a PEM private key from `{}` (key `server.tls.key`)", key.display()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&private)
        .with_context(|| format!("unsupported private key in `{}` (key `server.tls.key`)", key.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .with_context(|| format!("the key `{}` does not match the certificate `{}`", key.display(), cert.display()))?;
    Ok(certified)
}
