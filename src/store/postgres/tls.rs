//! TLS to PostgreSQL with rustls, chosen by the URL's `sslmode` as libpq reads it: `disable` (or
//! none) plain; `require` encrypted without checking the certificate (libpq's meaning; a warning
//! says so); `verify-ca` the certificate chains to a trusted root; `verify-full` that and the
//! host name matches. Roots: the PEM file at `sslrootcert`, else the Mozilla roots built in.
//! `prefer` and `allow` are refused: they fall back to plaintext without saying so.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How to connect, read off the URL.
pub enum Tls {
    /// Plaintext.
    Off,
    /// TLS with this connector.
    On(MakeRustlsConnect),
}

/// Splits `sslmode` and `sslrootcert` off `url` (tokio-postgres knows neither `verify-*` mode
/// nor root files) and builds the connector they ask for. Errors name the key and value.
pub fn from_url(url: &str) -> Result<(String, Tls), String> {
    let Ok(parsed) = url::Url::parse(url) else { return Ok((url.to_owned(), Tls::Off)) };
    let (mut mode, mut root) = (None, None);
    for (k, v) in parsed.query_pairs() {
        match k.as_ref() {
            "sslmode" => mode = Some(v.into_owned()),
            "sslrootcert" => root = Some(v.into_owned()),
            _ => {}
        }
    }
    // The other parameters stay exactly as written (re-encoding could change their meaning).
    let kept: Vec<&str> = parsed
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("sslmode=") && !p.starts_with("sslrootcert="))
        .collect();
    let mut parsed = parsed.clone();
    let kept = kept.join("&");
    parsed.set_query(Some(&kept).filter(|k| !k.is_empty()).map(String::as_str));
    let verify = match mode.as_deref() {
        None | Some("disable") => return Ok((parsed.to_string(), Tls::Off)),
        Some("require") => Verify::Nothing,
        Some("verify-ca") => Verify::Chain,
        Some("verify-full") => Verify::ChainAndName,
        Some(other) => {
            return Err(format!(
                "store.url: sslmode `{other}` is not supported; use `disable`, `require`, `verify-ca` or \
                 `verify-full` (`prefer` and `allow` may silently fall back to plaintext)"
            ))
        }
    };
    let roots = roots(root.as_deref())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("store.url: sslrootcert: {e}"))?;
    if verify == Verify::Nothing {
        tracing::warn!(
            "store.url has sslmode=require: the connection is encrypted but the server's certificate is \
             not checked; use sslmode=verify-full to make sure it is your database"
        );
    }
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("store.url: TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier { webpki, verify }))
        .with_no_client_auth();
    // sslrootcert is not part of the URL tokio-postgres reads; sslmode=require makes it insist
    // on TLS (a server refusing TLS is then an error, never plaintext).
    let query = [parsed.query().unwrap_or_default(), "sslmode=require"].join("&");
    parsed.set_query(Some(query.trim_start_matches('&')));
    Ok((parsed.to_string(), Tls::On(MakeRustlsConnect::new(config))))
}

fn roots(file: Option<&str>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match file {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| format!("store.url: sslrootcert `{path}`: {e}"))?;
            for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(&pem) {
                let cert: CertificateDer<'static> =
                    cert.map_err(|e| format!("store.url: sslrootcert `{path}` is not PEM certificates: {e}"))?;
                roots.add(cert).map_err(|e| format!("store.url: sslrootcert `{path}`: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("store.url: sslrootcert `{path}` holds no certificate"));
            }
        }
    }
    Ok(roots)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verify {
    Nothing,
    Chain,
    ChainAndName,
}

/// rustls' own verifier, less the checks the mode does not ask for.
#[derive(Debug)]
struct Verifier {
    webpki: Arc<WebPkiServerVerifier>,
    verify: Verify,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match (self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp, now), self.verify) {
            (Ok(v), _) => Ok(v),
            (Err(_), Verify::Nothing) => Ok(ServerCertVerified::assertion()),
            (
                Err(Error::InvalidCertificate(
                    CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
                )),
                Verify::Chain,
            ) => Ok(ServerCertVerified::assertion()),
            (Err(e), _) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
